//! Time, read through a trait so every expiry path is tested without sleeping. Defined once
//! in `holdfast-protocol`, shared by the client core and the server kit.

pub use holdfast_protocol::clock::{Clock, ManualClock, SystemClock};
