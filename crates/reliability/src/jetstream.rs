//! `billing-reliability jetstream --nats URL --stream NAME --out FILE [--delete]`: writes every
//! message of a JetStream stream, in stream order, as one line of `--out` (the payload: what
//! `billing events` prints), so `consumed` can check what `billing publish` left there; with
//! `--delete`, deletes the stream afterwards.

use std::io::Write;
use std::path::Path;

use async_nats::jetstream;
use serde_json::{json, Value};

/// Dumps the stream; returns the report.
pub(crate) async fn run(
    url: &str,
    stream: &str,
    out: &Path,
    delete: bool,
) -> Result<(Value, bool), String> {
    let client = async_nats::connect(url)
        .await
        .map_err(|e| format!("NATS at {url}: {e}"))?;
    let js = jetstream::new(client);
    let mut s = js
        .get_stream(stream)
        .await
        .map_err(|e| format!("stream {stream}: {e}"))?;
    let state = s
        .info()
        .await
        .map_err(|e| format!("stream {stream}: {e}"))?
        .state
        .clone();
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?,
    );
    let mut written = 0u64;
    for seq in state.first_sequence..=state.last_sequence {
        if state.messages == 0 {
            break;
        }
        let message = s
            .get_raw_message(seq)
            .await
            .map_err(|e| format!("stream {stream} message {seq}: {e}"))?;
        file.write_all(&message.payload)
            .and_then(|()| file.write_all(b"\n"))
            .map_err(|e| format!("{}: {e}", out.display()))?;
        written += 1;
    }
    file.flush()
        .map_err(|e| format!("{}: {e}", out.display()))?;
    if delete {
        js.delete_stream(stream)
            .await
            .map_err(|e| format!("deleting stream {stream}: {e}"))?;
    }
    let ok = written == state.messages;
    Ok((
        json!({ "stream": stream, "messages": state.messages, "written": written }),
        ok,
    ))
}
