//! Reading the source database's logical replication stream.
//!
//! [`transport`] opens the stream with pgwire-replication, [`slot`] plans and
//! checks the slot and publications, and [`progress`] is the only code that
//! tells the server how far walguard has durably got.

pub mod progress;
pub mod slot;
pub mod transport;

pub use progress::Progress;
pub use slot::SlotError;
pub use transport::{Transport, TransportError};
