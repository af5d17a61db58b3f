//! Which objects come back: the selection (buckets, a prefix, `--as-of`) read from the
//! ledger a page at a time, as one stream: the objects that travelled alone, in (bucket,
//! key) order, then the packs that hold the others.

use std::sync::Arc;

use futures_util::{Stream, StreamExt};

use super::PAGE;
use crate::error::Result;
use crate::ledger::{Delivery, Ledger, Selection};

/// What the run restores as one: an object, or the selected members of a pack.
pub(super) enum Item {
    Object(Box<Delivery>),
    Pack(i64),
}

/// The selected objects and packs, read from the ledger a page at a time, as one stream;
/// an error reading a page ends it.
pub(super) fn restorable<'a>(
    ledger: &'a Arc<Ledger>,
    selection: &'a Selection,
) -> impl Stream<Item = Result<Item>> + 'a {
    let objects = paged(
        move |after: Option<(String, String)>| {
            let selection = selection.clone();
            Ledger::blocking(ledger, move |l| {
                l.restorable_page(&selection, after.as_ref().map(|(b, k)| (b.as_str(), k.as_str())), PAGE)
            })
        },
        |d: &Delivery| (d.object.bucket.clone(), d.object.key.clone()),
    );
    let packs = paged(
        move |after: Option<i64>| {
            let selection = selection.clone();
            Ledger::blocking(ledger, move |l| l.restorable_packs(&selection, after.unwrap_or(0), PAGE))
        },
        |id: &i64| *id,
    );
    objects.map(|d| d.map(|d| Item::Object(Box::new(d)))).chain(packs.map(|p| p.map(Item::Pack)))
}

/// Pages of `page(after)` (`after` the key of the last item of the page before) as one
/// stream, until a page is empty.
fn paged<'a, T, K, F, Fut>(page: F, key: fn(&T) -> K) -> impl Stream<Item = Result<T>> + 'a
where
    T: 'a,
    K: 'a,
    F: Fn(Option<K>) -> Fut + 'a,
    Fut: Future<Output = Result<Vec<T>>> + 'a,
{
    futures_util::stream::unfold((Some(None), page), move |(after, page)| async move {
        let after = after?;
        match page(after).await {
            Ok(items) if items.is_empty() => None,
            Ok(items) => {
                let next = items.last().map(key);
                Some((futures_util::stream::iter(items.into_iter().map(Ok).collect::<Vec<_>>()), (Some(next), page)))
            }
            Err(e) => Some((futures_util::stream::iter(vec![Err(e)]), (None, page))),
        }
    })
    .flatten()
}
