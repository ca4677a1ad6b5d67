//! Arbitrary text split into the seven fields of a stored event (at U+001F, the unit separator;
//! the sequence as decimal text) fed to `record::decode` and `record::decode_unverified`: never
//! a panic; a decoded event hashes to 64 lowercase hex digits, the same each time, and the
//! unverified decoder agrees with the verifying one.

#![no_main]

use billing_store::record::{decode, decode_unverified};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut fields = text.splitn(7, '\u{1f}');
    let mut next = || fields.next().unwrap_or("");
    let (aggregate_type, aggregate_id, sequence) = (next(), next(), next());
    let (event_type, event_version, payload, metadata) = (next(), next(), next(), next());
    // Unparseable sequences still reach the decoder, as their length.
    let sequence = sequence.parse::<u64>().unwrap_or(sequence.len() as u64);
    let decoded = decode(
        aggregate_type,
        aggregate_id,
        sequence,
        event_type,
        event_version,
        payload,
        metadata,
    );
    let unverified = decode_unverified(
        aggregate_type,
        aggregate_id,
        sequence,
        event_type,
        event_version,
        payload,
        metadata,
    );
    match &decoded {
        Ok(event) => {
            let hash = &event.computed_hash;
            assert!(
                hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{hash}"
            );
            let again = decode(
                aggregate_type,
                aggregate_id,
                sequence,
                event_type,
                event_version,
                payload,
                metadata,
            )
            .expect("decoding is deterministic");
            assert_eq!(&again.computed_hash, hash);
            let unverified = unverified.expect("what decodes also decodes unverified");
            assert_eq!(unverified, event.stored);
        }
        Err(_) => {
            // The unverified decoder may accept more (it does not check the hash), never less
            // of what it says: whatever it returns must be an event of the given type.
            if let Ok(stored) = unverified {
                assert_eq!(stored.event.event_type(), event_type);
            }
        }
    }
});
