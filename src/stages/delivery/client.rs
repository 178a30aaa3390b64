//! The SMTP client for delivery: transactions over a connection from [`super::connect`],
//! pipelined when the server allows (RFC 2920), each recipient's RCPT reply read on its own,
//! and each transaction's envelope sent behind the data of the one before it; to a server that
//! also offers CHUNKING, groups of whole transactions in one write with BDAT (RFC 3030).

use super::DeliveryError;
use super::connect::{Conn, Endpoint, Failure, Reply, open};
use super::outgoing::Outgoing;
use super::pool::Pool;
use std::time::Duration;

/// What happened to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted with 250 after the data.
    Delivered(Reply),
    /// Refused with 4xx, or the connection failed: try again later.
    Deferred(String),
    /// Refused with 5xx.
    Bounced(Reply),
}

/// One SMTP transaction: an envelope and the bytes to send.
#[derive(Debug, Clone)]
pub struct Transaction {
    /// MAIL FROM.
    pub mail_from: String,
    /// RCPT TO, in order.
    pub recipients: Vec<String>,
    /// The message (CRLF, not yet dot-stuffed): the bytes every transaction that sends it
    /// shares, behind fields of this transaction's own if it has any.
    pub message: Outgoing,
    /// When `message` is 8-bit: its 7-bit twin, for servers that do not offer 8BITMIME.
    pub seven_bit: Option<Outgoing>,
}

impl Transaction {
    /// The bytes to send over `c`, and the MAIL parameters that go with them: 8-bit data
    /// with `BODY=8BITMIME` where the server offers it (RFC 6152), else the 7-bit twin; a
    /// header with UTF-8 in it with `SMTPUTF8` where offered (RFC 6531; elsewhere it goes as
    /// it is, there being no 7-bit form of such a header that keeps the signatures).
    fn body_for(&self, c: &Conn) -> (&Outgoing, String) {
        let (bytes, mut params) = match (&self.seven_bit, c.eight_bit) {
            (Some(_), true) => (&self.message, " BODY=8BITMIME".to_string()),
            (Some(seven), false) => (seven, String::new()),
            // No twin: 8-bit with its BODY parameter where offered, else as it is.
            (None, true) if !self.message.is_ascii() => {
                (&self.message, " BODY=8BITMIME".to_string())
            }
            (None, _) => (&self.message, String::new()),
        };
        if c.smtputf8 && !bytes.header_is_ascii() {
            params.push_str(" SMTPUTF8");
        }
        (bytes, params)
    }
}

/// What a delivery run needs besides the transactions.
pub struct Session<'a> {
    /// Our EHLO name.
    pub helo: &'a str,
    /// Time allowed for each step.
    pub limit: Duration,
    /// Where accepted recipients are reported (with the reply) as their 250 arrives.
    pub accepted: Option<&'a tokio::sync::mpsc::UnboundedSender<(String, String)>>,
    /// Idle connections to reuse, and to leave this one in.
    pub pool: Option<&'a Pool>,
}

/// Runs `transactions` over one connection to `endpoint` (reused from the pool when one is
/// idle). Every recipient gets an outcome: a transport failure defers every recipient not yet
/// settled.
///
/// Each recipient the server accepts is also sent to `accepted` at once, before the session
/// goes on, so the caller can make it durable right away: after a crash, only the copies whose
/// 250 arrived in the last moments can go out twice.
pub async fn deliver(
    endpoint: &Endpoint,
    transactions: &[Transaction],
    s: &Session<'_>,
) -> Vec<(String, Outcome)> {
    let mut done = Settled {
        list: Vec::new(),
        accepted: s.accepted,
    };
    let result = run(endpoint, transactions, s, &mut done).await;
    let mut done = done.list;
    if let Err(why) = result {
        let settled: std::collections::HashSet<String> =
            done.iter().map(|(a, _)| a.clone()).collect();
        for t in transactions {
            for r in &t.recipients {
                if !settled.contains(r) {
                    done.push((
                        r.clone(),
                        Outcome::Deferred(format!("{}: {why}", endpoint.addr)),
                    ));
                }
            }
        }
    }
    done
}

async fn run(
    endpoint: &Endpoint,
    transactions: &[Transaction],
    s: &Session<'_>,
    done: &mut Settled<'_>,
) -> Result<(), DeliveryError> {
    let pooled = match s.pool {
        Some(pool) => pool.take((endpoint.addr, endpoint.source)).await,
        None => None,
    };
    let mut c = match pooled {
        Some(c) => c,
        None => match open(endpoint, s.helo, s.limit).await {
            Ok(c) => c,
            Err(Failure::Transport(why)) => return Err(why),
            Err(Failure::Refused(reply)) => {
                for t in transactions {
                    done.extend(all(&t.recipients, &reply));
                }
                return Ok(());
            }
        },
    };
    if c.pipelining && c.chunking && transactions.len() > 1 {
        for group in groups(transactions) {
            chunked(&mut c, group, done).await?;
        }
    } else {
        // With PIPELINING, the next transaction's envelope goes out behind this one's data.
        let mut sent = false;
        for (i, t) in transactions.iter().enumerate() {
            let next = transactions.get(i + 1).filter(|_| c.pipelining);
            sent = transaction(&mut c, t, sent, next, done).await?;
        }
    }
    let spare = match s.pool {
        Some(pool) => pool.put((endpoint.addr, endpoint.source), c),
        None => Some(c),
    };
    if let Some(c) = spare {
        c.quit().await;
    }
    Ok(())
}

/// Sends `line` unless it went out with the pipelined group, then reads its reply.
async fn step(c: &mut Conn, line: &str, pipelined: bool) -> Result<Reply, DeliveryError> {
    if pipelined {
        c.reply().await
    } else {
        c.command(line).await
    }
}

/// Runs `t` over `c`. `sent`: its envelope already went out behind the last data. With
/// `next`, a pipelining server gets `next`'s envelope in the same write as `t`'s data (the
/// data may start a group, RFC 2920 §3.1), so a transaction costs one round trip, not two;
/// returns whether it did.
async fn transaction(
    c: &mut Conn,
    t: &Transaction,
    sent: bool,
    next: Option<&Transaction>,
    done: &mut Settled<'_>,
) -> Result<bool, DeliveryError> {
    // Behind data the server's state is clean, whatever the data's reply.
    let rset = c.dirty && !sent;
    // Until the reply to the data arrives, the server's state is unknown to us.
    c.dirty = true;
    let (body, param) = t.body_for(c);
    let (mail, rcpts) = envelope(t, &param);
    let pipelined = c.pipelining;
    if pipelined && !sent {
        let mut group = Vec::new();
        if rset {
            group.extend_from_slice(b"RSET\r\n");
        }
        group_of(&mail, &rcpts, &mut group);
        c.send(&group).await?;
    }
    if rset {
        let r = step(c, "RSET", pipelined).await?;
        if r.code != 250 {
            return Err(DeliveryError::RsetRefused(r));
        }
    }
    let from = step(c, &mail, pipelined).await?;
    let mut accepted = Vec::new();
    if from.code == 250 {
        for (r, line) in t.recipients.iter().zip(&rcpts) {
            let reply = step(c, line, pipelined).await?;
            if reply.code == 250 || reply.code == 251 {
                accepted.push(r.clone());
            } else {
                done.push((r.clone(), refused(&reply)));
            }
        }
    } else {
        done.extend(all(&t.recipients, &from));
        if pipelined {
            for _ in &rcpts {
                c.reply().await?;
            }
        }
    }
    if accepted.is_empty() && !pipelined {
        return Ok(false);
    }
    let data = step(c, "DATA", pipelined).await?;
    if data.code != 354 {
        done.extend(accepted.into_iter().map(|r| (r, refused_message(&data))));
        return Ok(false);
    }
    if accepted.is_empty() {
        // Pipelined, and the server opened the data although no recipient was accepted: send
        // an empty message to close it, and forget it (RFC 2920 §3.1).
        c.send(b".\r\n").await?;
        c.reply().await?;
        c.dirty = false;
        return Ok(false);
    }
    let mut out = super::wire::dot_stuff_parts(&body.parts());
    if let Some(next) = next {
        let (mail, rcpts) = envelope(next, &next.body_for(c).1);
        group_of(&mail, &rcpts, &mut out);
    }
    c.send(&out).await?;
    settle_message(c, accepted, done).await?;
    c.dirty = false;
    Ok(next.is_some())
}

/// Reads the reply to a message's data (or last chunk) and settles its `accepted`
/// recipients; true when it was taken. If the connection drops here, the server may or may
/// not have the message: SMTP's rule is to try again, which can duplicate but never loses.
async fn settle_message(
    c: &mut Conn,
    accepted: Vec<String>,
    done: &mut Settled<'_>,
) -> Result<bool, DeliveryError> {
    let end = c
        .reply()
        .await
        .map_err(|why| DeliveryError::AfterData(Box::new(why)))?;
    for r in accepted {
        let outcome = if end.code == 250 {
            Outcome::Delivered(end.clone())
        } else {
            refused_message(&end)
        };
        done.push((r, outcome));
    }
    Ok(end.code == 250)
}

/// Transactions in one BDAT group at most, and the bytes of message a group stops growing at:
/// a group is one write and its replies come back together, so it stays a few hundred KiB.
const GROUP_MAX: usize = 32;
const GROUP_BYTES: usize = 256 * 1024;

/// `transactions` cut into BDAT groups of up to [`GROUP_MAX`] transactions and about
/// [`GROUP_BYTES`] of messages (a larger message goes alone).
fn groups(transactions: &[Transaction]) -> impl Iterator<Item = &[Transaction]> {
    let mut rest = transactions;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let n = rest
            .iter()
            .take(GROUP_MAX)
            .take_while(|t| {
                bytes += t.message.len();
                bytes <= GROUP_BYTES
            })
            .count()
            .max(1);
        let (group, after) = rest.split_at(n);
        rest = after;
        Some(group)
    })
}

/// Sends `group` with BDAT (RFC 3030), commands and copies written together as a list of
/// buffers, and then reads its replies: with
/// PIPELINING and CHUNKING nothing in it waits for a go-ahead, so a group of members' copies
/// costs one round trip instead of one each. Each transaction but a clean connection's first
/// starts with RSET, so whatever the one before it left (a refused MAIL, a BDAT refused for
/// want of recipients) its replies are its own.
async fn chunked(
    c: &mut Conn,
    group: &[Transaction],
    done: &mut Settled<'_>,
) -> Result<(), DeliveryError> {
    use std::io::Write;
    // The commands go into one buffer; the copies are sent from where they are.
    let mut commands = Vec::with_capacity(group.len() * 256);
    let mut pieces = Vec::with_capacity(group.len());
    let mut rsets = Vec::with_capacity(group.len());
    for (i, t) in group.iter().enumerate() {
        let start = commands.len();
        let rset = i > 0 || c.dirty;
        if rset {
            commands.extend_from_slice(b"RSET\r\n");
        }
        rsets.push(rset);
        let (body, param) = t.body_for(c);
        let (mail, rcpts) = envelope(t, &param);
        lines_of(&mail, &rcpts, &mut commands);
        // Writing into a Vec cannot fail.
        let _ = write!(commands, "BDAT {} LAST\r\n", body.len());
        pieces.push((start..commands.len(), body.parts()));
    }
    let parts: Vec<&[u8]> = (pieces.into_iter())
        .flat_map(|(lines, [own, shared])| [&commands[lines], own, shared])
        .filter(|part| !part.is_empty())
        .collect();
    c.dirty = true;
    c.send_parts(&parts).await?;
    let mut clean = false;
    for (t, rset) in group.iter().zip(rsets) {
        if rset {
            let r = c.reply().await?;
            if r.code != 250 {
                return Err(DeliveryError::RsetRefused(r));
            }
        }
        clean = chunked_replies(c, t, done).await?;
    }
    c.dirty = !clean;
    Ok(())
}

/// Reads the replies to one BDAT transaction (MAIL, each RCPT, BDAT) and settles its
/// recipients; true when it ended with the message taken.
async fn chunked_replies(
    c: &mut Conn,
    t: &Transaction,
    done: &mut Settled<'_>,
) -> Result<bool, DeliveryError> {
    let from = c.reply().await?;
    let mut accepted = Vec::new();
    for r in &t.recipients {
        let reply = c.reply().await?;
        if from.code == 250 && (reply.code == 250 || reply.code == 251) {
            accepted.push(r.clone());
        } else if from.code == 250 {
            done.push((r.clone(), refused(&reply)));
        }
    }
    if from.code != 250 {
        done.extend(all(&t.recipients, &from));
    }
    if accepted.is_empty() {
        // Refused for want of recipients; the server read past the chunk.
        c.reply().await?;
        return Ok(false);
    }
    settle_message(c, accepted, done).await
}

/// The MAIL line (with its parameters) and the RCPT lines of `t`.
fn envelope(t: &Transaction, param: &str) -> (String, Vec<String>) {
    let mail = format!("MAIL FROM:<{}>{param}", t.mail_from);
    let rcpts = t
        .recipients
        .iter()
        .map(|r| format!("RCPT TO:<{r}>"))
        .collect();
    (mail, rcpts)
}

/// Appends a pipelined envelope: MAIL, every RCPT, DATA.
fn group_of(mail: &str, rcpts: &[String], out: &mut Vec<u8>) {
    lines_of(mail, rcpts, out);
    out.extend_from_slice(b"DATA\r\n");
}

/// Appends the MAIL line and every RCPT line, each with CRLF.
fn lines_of(mail: &str, rcpts: &[String], out: &mut Vec<u8>) {
    for line in std::iter::once(mail).chain(rcpts.iter().map(String::as_str)) {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Outcomes so far, with accepted recipients reported as they come.
struct Settled<'a> {
    list: Vec<(String, Outcome)>,
    accepted: Option<&'a tokio::sync::mpsc::UnboundedSender<(String, String)>>,
}

impl Settled<'_> {
    fn push(&mut self, item: (String, Outcome)) {
        if let (Outcome::Delivered(reply), Some(tx)) = (&item.1, self.accepted) {
            let _ = tx.send((item.0.clone(), reply.to_string()));
        }
        self.list.push(item);
    }

    fn extend(&mut self, items: impl IntoIterator<Item = (String, Outcome)>) {
        for item in items {
            self.push(item);
        }
    }
}

fn refused(reply: &Reply) -> Outcome {
    if reply.code >= 500 {
        Outcome::Bounced(reply.clone())
    } else {
        Outcome::Deferred(reply.to_string())
    }
}

/// What a refused transaction (MAIL, DATA or the end of data, not one RCPT) means for each
/// of its recipients: the server refused the message, not their addresses, and the record
/// says so ([`MESSAGE_REFUSED`]), so bounce scoring leaves their addresses alone.
fn all(recipients: &[String], reply: &Reply) -> Vec<(String, Outcome)> {
    recipients
        .iter()
        .map(|r| (r.clone(), refused_message(reply)))
        .collect()
}

/// Marks a recipient's record when the whole message was refused.
pub const MESSAGE_REFUSED: &str = "[the message was refused, not the address]";

fn refused_message(reply: &Reply) -> Outcome {
    match refused(reply) {
        Outcome::Bounced(r) => Outcome::Bounced(Reply {
            code: r.code,
            text: format!("{} {MESSAGE_REFUSED}", r.text),
        }),
        other => other,
    }
}
