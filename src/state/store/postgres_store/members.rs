//! Members, departures (so nothing but a person brings back who left) and the seeding of a
//! list from its file.

use super::{Conn, parse, pg};
use crate::state::store::Fault;
use crate::state::store::{Departure, Member};
use deadpool_postgres::GenericClient;

/// A member's key: the list and the address, lower-cased.
pub(super) fn key(list: &str, address: &str) -> (String, String) {
    (list.to_ascii_lowercase(), address.to_ascii_lowercase())
}

/// Adds the members not already there; `by_person` clears their departures, else those who
/// left are skipped. Returns how many were new.
async fn insert(
    c: &impl GenericClient,
    list: &str,
    members: &[Member],
    by_person: bool,
) -> Result<usize, Fault> {
    let list = list.to_ascii_lowercase();
    let addresses: Vec<String> = members
        .iter()
        .map(|m| m.address.to_ascii_lowercase())
        .collect();
    let records = members
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<String>, _>>()?;
    if by_person {
        c.execute(
            "DELETE FROM departed WHERE list = $1 AND address = ANY($2)",
            &[&list, &addresses],
        )
        .await
        .map_err(pg)?;
    }
    let added = c
        .execute(
            "INSERT INTO members (list, address, record)
             SELECT $1, t.a, t.r FROM unnest($2::TEXT[], $3::TEXT[]) AS t(a, r)
             WHERE NOT EXISTS (SELECT 1 FROM departed d WHERE d.list = $1 AND d.address = t.a)
             ON CONFLICT DO NOTHING",
            &[&list, &addresses, &records],
        )
        .await
        .map_err(pg)?;
    Ok(added as usize)
}

/// Members added at once from which the table's statistics are brought up to date.
const ANALYZE_AFTER: usize = 1_000;

/// Brings the members table's statistics up to date after `added` members came at once,
/// and vacuums it too when they are a tenth of it or more, as autovacuum would a minute or
/// more later. Until then the planner guesses a freshly imported list holds a few hundred
/// rows and reads each page of a fan-out's members by sorting every member after the page's
/// start: 36 ms a page of 10,000 for a list of 100,000, against 3 ms read in index order,
/// and seconds a page for a million. The vacuum marks the new rows as visible to all, which
/// the first post's reading of them would otherwise do (and autovacuum's, during it).
/// The members are committed by then: a failure is logged, not told to the caller.
async fn analyze_after(c: &Conn, added: usize) {
    if added < ANALYZE_AFTER {
        return;
    }
    if let Err(e) = analyze(c, added).await {
        tracing::warn!(added, error = %e, "cannot bring the members table's statistics up to date; autovacuum will");
    }
}

/// `ANALYZE`, or `VACUUM (ANALYZE)` when `added` is a tenth of the table's rows or more.
async fn analyze(c: &Conn, added: usize) -> Result<(), Fault> {
    let rows: f32 = c
        .query_one(
            "SELECT reltuples FROM pg_class WHERE oid = 'members'::regclass",
            &[],
        )
        .await
        .map_err(pg)?
        .get(0);
    let sql = match added as f64 >= 0.1 * f64::from(rows.max(0.0)) {
        true => "VACUUM (ANALYZE) members",
        false => "ANALYZE members",
    };
    c.batch_execute(sql).await.map_err(pg)
}

/// Adds members in one transaction.
pub(super) async fn add(
    c: &mut Conn,
    list: &str,
    members: &[Member],
    by_person: bool,
) -> Result<usize, Fault> {
    let tx = c.transaction().await.map_err(pg)?;
    let added = insert(&tx, list, members, by_person).await?;
    tx.commit().await.map_err(pg)?;
    analyze_after(c, added).await;
    Ok(added)
}

/// Seeds `list` from its file unless it was seeded before (`again`: anyway).
pub(super) async fn seed(
    c: &mut Conn,
    list: &str,
    members: &[Member],
    again: bool,
) -> Result<Option<usize>, Fault> {
    let now = crate::auth::unix_now() as i64;
    let key = list.to_ascii_lowercase();
    let tx = c.transaction().await.map_err(pg)?;
    let first = tx
        .execute(
            "INSERT INTO seeded (list, at) VALUES ($1, $2)
             ON CONFLICT (list) DO UPDATE SET at = EXCLUDED.at WHERE $3",
            &[&key, &now, &again],
        )
        .await
        .map_err(pg)?;
    if first == 0 {
        return Ok(None);
    }
    let added = insert(&tx, list, members, false).await?;
    tx.commit().await.map_err(pg)?;
    analyze_after(c, added).await;
    Ok(Some(added))
}

/// Why the address left the list, if it did and nobody added it since.
pub(super) async fn departure(
    c: &Conn,
    (list, address): (String, String),
) -> Result<Option<Departure>, Fault> {
    let row = c
        .query_opt(
            "SELECT record FROM departed WHERE list = $1 AND address = $2",
            &[&list, &address],
        )
        .await
        .map_err(pg)?;
    row.map(|r| parse(r.get(0), "departure record")).transpose()
}

/// Writes a member's record.
pub(super) async fn put(c: &Conn, list: &str, member: &Member) -> Result<(), Fault> {
    let (list, address) = key(list, &member.address);
    let json = serde_json::to_string(member)?;
    c.execute(
        "INSERT INTO members (list, address, record) VALUES ($1, $2, $3)
         ON CONFLICT (list, address) DO UPDATE SET record = EXCLUDED.record",
        &[&list, &address, &json],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

/// Removes a member and remembers why; false when they were not one.
pub(super) async fn remove(
    c: &mut Conn,
    (list, address): (String, String),
    why: Departure,
) -> Result<bool, Fault> {
    let json = serde_json::to_string(&why)?;
    let tx = c.transaction().await.map_err(pg)?;
    let removed = tx
        .execute(
            "DELETE FROM members WHERE list = $1 AND address = $2",
            &[&list, &address],
        )
        .await
        .map_err(pg)?;
    tx.execute(
        "INSERT INTO departed (list, address, record) VALUES ($1, $2, $3)
         ON CONFLICT (list, address) DO UPDATE SET record = EXCLUDED.record",
        &[&list, &address, &json],
    )
    .await
    .map_err(pg)?;
    tx.commit().await.map_err(pg)?;
    Ok(removed == 1)
}

/// At most `limit` members whose address sorts after `after`, by address.
pub(super) async fn page(
    c: &Conn,
    list: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<Member>, Fault> {
    let stmt = c
        .prepare_cached(
            "SELECT record FROM members WHERE list = $1 AND address > $2
             ORDER BY address LIMIT $3",
        )
        .await
        .map_err(pg)?;
    let rows = c.query(&stmt, &[&list, &after, &limit]).await.map_err(pg)?;
    rows.iter()
        .map(|r| parse(r.get(0), "member record"))
        .collect()
}

/// Addresses of members who get each post read at once (about 30 bytes each).
const ADDRESS_PAGE: i64 = 50_000;
/// Records of the other members read at once.
const OTHER_PAGE: i64 = 10_000;

/// The addresses of `list`'s members who get each post distributed on `today`, and whether
/// any takes the digest ([`crate::state::store::Store::post_recipients`]). Most members are
/// `plain` (migration 8): their addresses are read from the index alone. The others' records
/// are read and judged as the embedded store judges them. Both reads see one snapshot: a
/// member whose mode changes meanwhile is counted once, on one side.
pub(super) async fn post_recipients(
    c: &mut Conn,
    list: &str,
    today: &str,
) -> Result<(Vec<String>, bool), Fault> {
    let tx = c
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(pg)?;
    let plain = plain_addresses(&tx, list).await?;
    let other = tx
        .prepare_cached(
            "SELECT address, record FROM members WHERE list = $1 AND NOT plain AND address > $2
             ORDER BY address LIMIT $3",
        )
        .await
        .map_err(pg)?;
    let (mut others, mut digest) = (Vec::new(), false);
    let mut after = String::new();
    loop {
        let rows = tx
            .query(&other, &[&list, &after, &OTHER_PAGE])
            .await
            .map_err(pg)?;
        for row in &rows {
            let member = parse(row.get(1), "member record")?;
            if let Some(address) = crate::state::store::roles::tally(member, today, &mut digest) {
                others.push((row.get::<_, String>(0), address));
            }
        }
        match rows.last() {
            Some(last) if rows.len() as i64 >= OTHER_PAGE => after = last.get(0),
            _ => break,
        }
    }
    tx.commit().await.map_err(pg)?;
    Ok((merged(plain, others), digest))
}

/// The addresses of `list`'s plain members, by address, a page at a time.
async fn plain_addresses(
    tx: &deadpool_postgres::Transaction<'_>,
    list: &str,
) -> Result<Vec<String>, Fault> {
    let stmt = tx
        .prepare_cached(
            "SELECT address FROM members WHERE list = $1 AND plain AND address > $2
             ORDER BY address LIMIT $3",
        )
        .await
        .map_err(pg)?;
    let mut addresses: Vec<String> = Vec::new();
    let mut after = String::new();
    loop {
        let rows = tx
            .query(&stmt, &[&list, &after, &ADDRESS_PAGE])
            .await
            .map_err(pg)?;
        let full = rows.len() as i64 >= ADDRESS_PAGE;
        addresses.extend(rows.iter().map(|r| r.get::<_, String>(0)));
        match addresses.last() {
            Some(last) if full => after.clone_from(last),
            _ => return Ok(addresses),
        }
    }
}

/// `plain` addresses (their own keys) and `others` (key, address), each in key order, merged
/// in that order, as the embedded store lists them.
fn merged(plain: Vec<String>, others: Vec<(String, String)>) -> Vec<String> {
    if others.is_empty() {
        return plain;
    }
    let mut out = Vec::with_capacity(plain.len() + others.len());
    let mut others = others.into_iter().peekable();
    for address in plain {
        while let Some((_, other)) = others.next_if(|(key, _)| *key < address) {
            out.push(other);
        }
        out.push(address);
    }
    out.extend(others.map(|(_, a)| a));
    out
}

/// One member's record.
pub(super) async fn one(
    c: &Conn,
    (list, address): (String, String),
) -> Result<Option<Member>, Fault> {
    let stmt = c
        .prepare_cached("SELECT record FROM members WHERE list = $1 AND address = $2")
        .await
        .map_err(pg)?;
    let row = c.query_opt(&stmt, &[&list, &address]).await.map_err(pg)?;
    row.map(|r| parse(r.get(0), "member record")).transpose()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_other_members_go_between_the_plain_ones_in_address_order() {
        let plain = ["b@x.test", "d@x.test"].map(String::from).to_vec();
        let others = ["A@x.test", "c@x.test", "E@x.test"]
            .map(|a| (a.to_ascii_lowercase(), a.to_string()))
            .to_vec();
        assert_eq!(
            super::merged(plain.clone(), others),
            ["A@x.test", "b@x.test", "c@x.test", "d@x.test", "E@x.test"]
        );
        assert_eq!(super::merged(plain.clone(), Vec::new()), plain);
    }
}
