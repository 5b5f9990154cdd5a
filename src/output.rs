//! What `sesguard scan` shows people: the signal table that fits the terminal, and the progress
//! bar.

pub mod progress;
pub mod table;
