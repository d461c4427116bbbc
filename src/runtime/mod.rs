//! Workers: the loop that drains lanes, parking and idle strategies,
//! dispatch to handlers, subscriptions, and the retry path.

pub(crate) mod delivery;
pub(crate) mod dispatch;
pub(crate) mod drain;
pub(crate) mod idle;
pub(crate) mod park;
pub(crate) mod recovery;
pub(crate) mod solo;
pub(crate) mod sub_state;
pub(crate) mod subscription;
pub(crate) mod worker;
pub(crate) mod workers;
