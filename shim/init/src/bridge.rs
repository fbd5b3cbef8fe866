//! The proxy bridge: a TCP listener inside a container that has no route out, forwarding each
//! connection to the egress proxy's Unix socket, which the shim bind-mounts from the host.
//!
//! The workload sees an ordinary HTTP proxy on `127.0.0.1:<port>` (`HTTP_PROXY` is set for it);
//! every byte it sends out goes through semble-proxy, which decides. The bridge itself decides
//! nothing: it runs in `semble-init`, outside the workload's Landlock domain, and copies bytes.

use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::thread;

/// Bind the listener (before the workload starts, so the port is ready when it runs).
pub fn bind(listen: &str) -> io::Result<TcpListener> {
    TcpListener::bind(listen)
}

/// Serve forever on a background thread. Each connection gets two small copy threads.
pub fn serve(listener: TcpListener, socket: PathBuf) -> io::Result<thread::JoinHandle<()>> {
    thread::Builder::new().name("proxy-bridge".into()).stack_size(64 * 1024).spawn(move || {
        for conn in listener.incoming() {
            let Ok(client) = conn else { continue };
            let socket = socket.clone();
            let _ = thread::Builder::new().stack_size(64 * 1024).spawn(move || {
                if let Err(e) = forward(client, &socket) {
                    eprintln!("semble-init: proxy bridge: {e}");
                }
            });
        }
    })
}

/// The answer when the proxy is not there: an HTTP error both plain requests and `CONNECT`
/// understand, instead of a reset the workload cannot explain.
const UNAVAILABLE: &[u8] = b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 49\r\n\r\nsemble: the egress proxy for this sandbox is down";

fn forward(mut client: TcpStream, socket: &PathBuf) -> io::Result<()> {
    let upstream = match UnixStream::connect(socket) {
        Ok(u) => u,
        Err(e) => {
            use std::io::Write;
            let _ = client.write_all(UNAVAILABLE);
            let _ = client.shutdown(Shutdown::Both);
            return Err(io::Error::new(e.kind(), format!("cannot reach the proxy at `{}`: {e}", socket.display())));
        }
    };
    let (mut c_read, mut c_write) = (client.try_clone()?, client);
    let (mut u_read, mut u_write) = (upstream.try_clone()?, upstream);
    let up = thread::Builder::new().stack_size(64 * 1024).spawn(move || {
        let _ = io::copy(&mut c_read, &mut u_write);
        let _ = u_write.shutdown(Shutdown::Write);
    })?;
    let _ = io::copy(&mut u_read, &mut c_write);
    let _ = c_write.shutdown(Shutdown::Write);
    let _ = up.join();
    Ok(())
}
