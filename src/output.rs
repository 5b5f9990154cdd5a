//! What `sesguard scan` shows people: the signal table that fits the terminal.

pub mod table;
