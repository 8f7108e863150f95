//! The reference backend and session.

pub struct ReferenceBackend;

pub struct ReferenceSession;
