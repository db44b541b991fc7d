//! HTTP/1.1 on one connection, below the connection loop: request heads
//! (`head`, with its `fields`, `target` and `host` records), request body
//! framing (`decode`), the read side lent to a request's body (`input`),
//! the response's framing decision (`commit`), bytes and write side
//! (`encode`, `output`), and what a connection shares with its handler
//! (`link`, `loan`).
//!
//! Nothing here runs a loop or owns a task: the connection loop does, with
//! these pieces.

pub(crate) mod backlog;
pub(crate) mod commit;
pub(crate) mod decode;
mod demand;
pub(crate) mod encode;
mod fields;
pub(crate) mod head;
mod host;
pub(crate) mod input;
pub(crate) mod link;
pub(crate) mod loan;
pub(crate) mod output;
pub(crate) mod response_fields;
mod syntax;
mod target;
