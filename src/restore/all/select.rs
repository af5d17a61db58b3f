//! Which objects come back: the selection (buckets, a prefix, `--as-of`) read from the
//! ledger a page at a time, as one stream.

use std::sync::Arc;

use futures_util::StreamExt;

use super::PAGE;
use crate::error::Result;
use crate::ledger::{Delivery, Ledger, Selection};

/// The selected objects, read from the ledger a page at a time, as one stream; an error
/// reading a page ends it.
pub(super) fn restorable<'a>(
    ledger: &'a Arc<Ledger>,
    selection: &'a Selection,
) -> impl futures_util::Stream<Item = Result<Delivery>> + 'a {
    futures_util::stream::unfold(Some(None::<(String, String)>), move |after| async move {
        let after = after?;
        let (selection, from) = (selection.clone(), after.clone());
        let page = Ledger::blocking(ledger, move |l| {
            l.restorable_page(&selection, from.as_ref().map(|(b, k)| (b.as_str(), k.as_str())), PAGE)
        })
        .await;
        match page {
            Ok(page) if page.is_empty() => None,
            Ok(page) => {
                let next = page.last().map(|d| (d.object.bucket.clone(), d.object.key.clone()));
                Some((futures_util::stream::iter(page.into_iter().map(Ok).collect::<Vec<_>>()), Some(next)))
            }
            Err(e) => Some((futures_util::stream::iter(vec![Err(e)]), None)),
        }
    })
    .flatten()
}
