//! The Tor exit list fetcher against a local HTTP server on 127.0.0.1 (no internet): a good
//! list is accepted, an HTML error page, a 500, a slow body and an oversized body are not; and,
//! against moto's S3, a good list is stored and a failed fetch leaves the stored one as it was.

mod support;
use support::*;

use std::time::{Duration, Instant};

use sesguard::lambda::{TorFetchConfig, TorListRejected};
use sesguard::s3url::S3Url;
use sesguard_lambda::tor::{FetchError, download, refresh};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const LIST: &str = "# Tor bulk exit list\n192.0.2.10\n198.51.100.20\n2001:db8::30\n";
const HTML: &str = "<!DOCTYPE html>\n<html><body><h1>502 Bad Gateway</h1></body></html>\n";

/// A small HTTP/1.1 server: `/good`, `/html`, `/500`, `/slow` (headers, then the body one line
/// every second), `/big` (3 MB). Returns its base URL.
async fn server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let head = |status: &str, length: usize| {
                    format!(
                        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {length}\r\nconnection: close\r\n\r\n"
                    )
                };
                let reply = match path.as_str() {
                    "/good" => format!("{}{LIST}", head("200 OK", LIST.len())),
                    "/html" => format!("{}{HTML}", head("200 OK", HTML.len())),
                    "/500" => format!("{}oops", head("500 Internal Server Error", 4)),
                    "/big" => {
                        let body = "192.0.2.1\n".repeat(300_000);
                        format!("{}{body}", head("200 OK", body.len()))
                    }
                    "/slow" => {
                        // The server is slow, on purpose: the client must give up at its timeout.
                        let _ = socket
                            .write_all(head("200 OK", LIST.len() * 100).as_bytes())
                            .await;
                        for _ in 0..100 {
                            if socket.write_all(LIST.as_bytes()).await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        return;
                    }
                    _ => head("404 Not Found", 0),
                };
                let _ = socket.write_all(reply.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{address}")
}

const TIMEOUT: Duration = Duration::from_secs(2);
const MAX: usize = 1024 * 1024;

#[tokio::test]
async fn a_good_list_is_accepted_and_an_error_page_a_500_a_slow_or_huge_body_are_not() {
    let base = server().await;
    let (text, addresses) = download(&format!("{base}/good"), TIMEOUT, MAX)
        .await
        .expect("a good list");
    assert_eq!((text.as_str(), addresses), (LIST, 3));

    match download(&format!("{base}/html"), TIMEOUT, MAX).await {
        Err(FetchError::Rejected {
            reason: TorListRejected::Html,
            ..
        }) => {}
        other => panic!("HTML page: {other:?}"),
    }
    match download(&format!("{base}/500"), TIMEOUT, MAX).await {
        Err(FetchError::Status { status: 500, .. }) => {}
        other => panic!("500: {other:?}"),
    }
    let started = Instant::now();
    match download(&format!("{base}/slow"), TIMEOUT, MAX).await {
        Err(FetchError::TimedOut { .. }) => {}
        other => panic!("slow body: {other:?}"),
    }
    assert!(
        started.elapsed() < TIMEOUT + Duration::from_secs(3),
        "gave up at its timeout ({:?})",
        started.elapsed()
    );
    match download(&format!("{base}/big"), TIMEOUT, MAX).await {
        Err(FetchError::TooLarge { max: MAX, .. }) => {}
        other => panic!("3 MB body: {other:?}"),
    }
}

#[tokio::test]
async fn plain_http_is_refused_except_from_the_loopback_address() {
    match download("http://check.torproject.org/torbulkexitlist", TIMEOUT, MAX).await {
        Err(FetchError::NotHttps { .. }) => {}
        other => panic!("{other:?}"),
    }
}

async fn stored(client: &aws_sdk_s3::Client, url: &S3Url) -> String {
    let object = client
        .get_object()
        .bucket(&url.bucket)
        .key(&url.prefix)
        .send()
        .await
        .expect("stored");
    let bytes = object.body.collect().await.expect("body").into_bytes();
    String::from_utf8(bytes.to_vec()).expect("text")
}

#[tokio::test]
async fn a_good_list_is_stored_and_a_failed_fetch_keeps_the_stored_one() {
    let Some(endpoint) = endpoint() else { return };
    let base = server().await;
    let (client, bucket) = bucket(&sdk(&endpoint).await, "sesguard-tor").await;
    let destination = S3Url::parse(&format!("s3://{bucket}/tor-exit-list.txt")).expect("url");
    let config = |path: &str| TorFetchConfig {
        source: format!("{base}{path}"),
        destination: destination.clone(),
        timeout: TIMEOUT,
        max_bytes: MAX,
    };

    // Nothing stored yet, and the fetch fails: no age to give.
    let outcome = refresh(&client, &config("/500")).await;
    assert!(
        !outcome.stored && outcome.age_seconds.is_none(),
        "{outcome:?}"
    );

    let outcome = refresh(&client, &config("/good")).await;
    assert!(outcome.stored, "{outcome:?}");
    assert_eq!((outcome.addresses, outcome.age_seconds), (Some(3), Some(0)));
    assert_eq!(stored(&client, &destination).await, LIST);

    for bad in ["/html", "/500", "/slow"] {
        let outcome = refresh(&client, &config(bad)).await;
        assert!(!outcome.stored, "{bad}: {outcome:?}");
        assert!(outcome.error.is_some(), "{bad}");
        assert!(
            outcome.age_seconds.is_some_and(|age| age < 600),
            "{bad}: the stored list's age"
        );
        assert_eq!(
            stored(&client, &destination).await,
            LIST,
            "{bad}: the stored list stays"
        );
    }

    // What the detector reads: a list it parses.
    assert!(sesguard::config::TorList::parse(&stored(&client, &destination).await).is_ok());
}
