//! A producer beside the work it feeds: part k+1 is read from S3 while part k uploads,
//! the next listing page is fetched while this one is compared with the ledger.

use std::future::Future;

/// Runs `work` to its end while `feeder` (which feeds it through a channel) makes
/// progress beside it, in the same task; the feeder is dropped once `work` is done,
/// finished or not.
pub(crate) async fn alongside<T>(work: impl Future<Output = T>, feeder: impl Future<Output = ()>) -> T {
    tokio::pin!(work, feeder);
    let mut feeding = true;
    loop {
        tokio::select! {
            done = &mut work => return done,
            _ = &mut feeder, if feeding => feeding = false,
        }
    }
}
