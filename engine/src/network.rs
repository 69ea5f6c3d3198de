//! Connecting the processes of a cluster before timely's networking takes the sockets.
//!
//! Timely's own start-up retries an absent peer forever and panics on a connection that does not
//! begin with a worker index (a port scanner, a health check, a stray `nc`), which took both
//! processes down. Here every process listens on its `host:port` and connects to the processes
//! before it, as timely does, but each connection must first complete Ember's handshake (a magic
//! string, the process index and the number of processes, answered the same way); anything else
//! is logged and dropped. A process that has not heard from every peer within
//! `ember.cluster.startupTimeout` fails with [`EngineError::PeerUnreachable`] naming the peer.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{EngineError, Result};

/// The first bytes of a handshake: Ember's cluster protocol, version 1.
const MAGIC: &[u8; 8] = b"EMBRnet1";
/// Magic, process index, process count.
const HELLO_LEN: usize = 24;
/// The longest a connection may take to send its handshake.
const HANDSHAKE: Duration = Duration::from_secs(5);
/// Between attempts to connect to a peer that is not listening yet.
const RETRY: Duration = Duration::from_millis(100);

fn hello(me: usize, processes: usize) -> [u8; HELLO_LEN] {
    let mut b = [0u8; HELLO_LEN];
    b[..8].copy_from_slice(MAGIC);
    b[8..16].copy_from_slice(&(me as u64).to_be_bytes());
    b[16..].copy_from_slice(&(processes as u64).to_be_bytes());
    b
}

/// Reads a peer's handshake: its process index, or why the bytes are not a handshake.
fn read_hello(
    stream: &mut TcpStream,
    processes: usize,
    timeout: Duration,
) -> Result<usize, String> {
    stream
        .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
        .map_err(|e| e.to_string())?;
    let mut b = [0u8; HELLO_LEN];
    stream
        .read_exact(&mut b)
        .map_err(|e| format!("no handshake ({e})"))?;
    if &b[..8] != MAGIC {
        return Err("not an Ember cluster handshake".into());
    }
    let index = u64::from_be_bytes(b[8..16].try_into().expect("8 bytes"));
    let count = u64::from_be_bytes(b[16..].try_into().expect("8 bytes"));
    if count != processes as u64 {
        return Err(format!(
            "the peer's ember.cluster.hosts lists {count} processes, this one {processes}"
        ));
    }
    usize::try_from(index)
        .ok()
        .filter(|&i| i < processes)
        .ok_or_else(|| format!("process index {index} out of range"))
}

/// Ready for timely: blocking, no timeouts, no Nagle delay.
fn for_timely(stream: TcpStream) -> Result<TcpStream, String> {
    stream.set_read_timeout(None).map_err(|e| e.to_string())?;
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(stream)
}

/// One socket per process in `hosts` (`None` for this process `me`), each having completed the
/// handshake, or an error naming the peer that did not answer within `timeout`.
pub(crate) fn connect(
    hosts: &[String],
    me: usize,
    timeout: Duration,
) -> Result<Vec<Option<TcpStream>>> {
    let started = Instant::now();
    let deadline = started + timeout;
    let listener = TcpListener::bind(&hosts[me]).map_err(|e| {
        EngineError::Startup(format!(
            "process {me} cannot listen on {} (ember.cluster.hosts): {e}",
            hosts[me]
        ))
    })?;
    let lower = hosts[..me].to_vec();
    let processes = hosts.len();
    let connector = std::thread::Builder::new()
        .name("ember-connect".into())
        .spawn(move || connect_lower(&lower, me, processes, started, deadline))
        .map_err(|e| EngineError::Startup(format!("cannot start a thread: {e}")))?;
    let accepted = accept_higher(&listener, hosts, me, started, deadline);
    let connected = connector
        .join()
        .map_err(|_| EngineError::Startup("the connecting thread panicked".into()))?;
    let mut sockets = connected?;
    sockets.push(None);
    sockets.extend(accepted?);
    tracing::info!(process = me, processes, "cluster connections established");
    Ok(sockets)
}

/// Connects to processes `0..me`, retrying until `deadline`.
fn connect_lower(
    hosts: &[String],
    me: usize,
    processes: usize,
    started: Instant,
    deadline: Instant,
) -> Result<Vec<Option<TcpStream>>> {
    let mut out = Vec::with_capacity(hosts.len());
    for (peer, address) in hosts.iter().enumerate() {
        let mut logged = Instant::now();
        let stream = loop {
            let last = match try_connect(address, me, peer, processes, deadline) {
                Ok(s) => break s,
                Err(why) => why,
            };
            if Instant::now() >= deadline {
                return Err(EngineError::PeerUnreachable {
                    process: me,
                    peer,
                    address: address.clone(),
                    what: "connect to".into(),
                    waited_ms: started.elapsed().as_millis() as u64,
                    reason: last,
                });
            }
            if logged.elapsed() >= Duration::from_secs(5) {
                logged = Instant::now();
                tracing::info!(process = me, peer, %address, reason = %last, "waiting for a peer process");
            }
            std::thread::sleep(RETRY.min(deadline.saturating_duration_since(Instant::now())));
        };
        out.push(Some(stream));
    }
    Ok(out)
}

fn try_connect(
    address: &str,
    me: usize,
    peer: usize,
    processes: usize,
    deadline: Instant,
) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = address
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .collect();
    let left = deadline.saturating_duration_since(Instant::now());
    let wait = left.clamp(Duration::from_millis(1), Duration::from_secs(2));
    let mut last = String::from("no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, wait) {
            Ok(mut s) => {
                s.write_all(&hello(me, processes))
                    .map_err(|e| e.to_string())?;
                let answer = read_hello(&mut s, processes, left.min(HANDSHAKE))?;
                if answer != peer {
                    return Err(format!(
                        "process {answer} answered at the address of {peer}"
                    ));
                }
                return for_timely(s);
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// Accepts processes `me+1..`: each connection completes the handshake in a thread of its own
/// (a silent stray connection delays nobody); one that fails it is dropped.
fn accept_higher(
    listener: &TcpListener,
    hosts: &[String],
    me: usize,
    started: Instant,
    deadline: Instant,
) -> Result<Vec<Option<TcpStream>>> {
    let processes = hosts.len();
    let mut slots: Vec<Option<TcpStream>> = (me + 1..processes).map(|_| None).collect();
    listener
        .set_nonblocking(true)
        .map_err(|e| EngineError::Startup(format!("listener on {}: {e}", hosts[me])))?;
    let (tx, rx) = mpsc::channel::<(SocketAddr, Result<(usize, TcpStream), String>)>();
    while slots.iter().any(Option::is_none) {
        let mut busy = false;
        match listener.accept() {
            Ok((mut stream, from)) => {
                busy = true;
                let tx = tx.clone();
                let left = deadline.saturating_duration_since(Instant::now());
                let _ = std::thread::Builder::new()
                    .name("ember-handshake".into())
                    .spawn(move || {
                        let _ = stream.set_nonblocking(false);
                        let got = read_hello(&mut stream, processes, left.min(HANDSHAKE)).and_then(
                            |peer| {
                                stream
                                    .write_all(&hello(me, processes))
                                    .map_err(|e| e.to_string())?;
                                Ok((peer, stream))
                            },
                        );
                        let _ = tx.send((from, got));
                    });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => tracing::warn!(error = %e, "accepting a cluster connection failed"),
        }
        while let Ok((from, got)) = rx.try_recv() {
            busy = true;
            match got {
                Ok((peer, stream)) if peer > me && slots[peer - me - 1].is_none() => {
                    let stream = for_timely(stream).map_err(EngineError::Startup)?;
                    slots[peer - me - 1] = Some(stream);
                }
                Ok((peer, _)) => tracing::warn!(
                    %from, peer,
                    "dropping a cluster connection: process {peer} should not connect to process {me}, or already did"
                ),
                Err(why) => {
                    tracing::warn!(%from, reason = %why, "dropping a connection to the cluster port that is not an Ember peer")
                }
            }
        }
        if Instant::now() >= deadline {
            let peer = me + 1 + slots.iter().position(Option::is_none).unwrap_or(0);
            return Err(EngineError::PeerUnreachable {
                process: me,
                peer,
                address: hosts[peer].clone(),
                what: "hear from".into(),
                waited_ms: started.elapsed().as_millis() as u64,
                reason: "it never connected".into(),
            });
        }
        if !busy {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    Ok(slots)
}
