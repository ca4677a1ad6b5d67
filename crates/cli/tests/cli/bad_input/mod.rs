//! The bad-input catalogue of the `billing` binary (issue 5, "Hostile input"): odd user names,
//! workspace ids with quotes, SQL metacharacters and control characters, unknown sites and
//! methods, malformed times, versions, roles, e-mails and heads, unreadable files, database URLs
//! that are malformed or do not answer.
//!
//! Every case runs four times — on a fresh directory (no store yet) and on a prepared store (an
//! upgraded workspace), each in human and in `--json` mode; a refusal that depends on the
//! workspace's state runs on the prepared store only, an import on an empty store only — and
//! must:
//! - exit with the documented status (SPEC §7: 1 only for a rule refusal, 2 for bad input or an
//!   unreadable file, 3 for a store that is unavailable), never panic;
//! - say so clearly: the message names the field and the value (on stderr, or as the `error`
//!   object of the JSON document on stdout);
//! - write nothing: for statuses 2 and 3 the working directory (store files included) is byte for
//!   byte what it was, so a fresh store is not even created; where the store had to be opened
//!   (a rule refusal, a file that fails only while it is read) the exported log is unchanged.

mod catalogue;
mod run;

mod database_urls;
mod files;
mod ids;
mod names;
mod sites;
mod sql;
mod times;
