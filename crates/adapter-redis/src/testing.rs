//! A TCP proxy in front of Redis that tests can stop, black-hole and resume, to take Redis away
//! from a running server (connections are cut and new ones refused, or accepted and never
//! answered) without touching the shared Redis itself.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;

#[derive(Debug)]
pub struct ToggleProxy {
    address: SocketAddr,
    target: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl ToggleProxy {
    /// Starts a proxy on a free local port forwarding to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<ToggleProxy> {
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let address = socket.local_addr()?;
        let proxy = ToggleProxy {
            address,
            target,
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        proxy.serve(socket)?;
        Ok(proxy)
    }

    pub fn url(&self) -> String {
        format!("redis://{}", self.address)
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn serve(&self, socket: TcpSocket) -> std::io::Result<()> {
        let listener = socket.listen(128)?;
        let (target, tasks) = (self.target, Arc::clone(&self.tasks));
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let connection = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(connection);
            }
        });
        self.tasks().push(accept);
        Ok(())
    }

    /// Cuts every connection and stops listening: Redis is "down".
    pub fn stop(&self) {
        for task in self.tasks().drain(..) {
            task.abort();
        }
    }

    /// Cuts every connection, then accepts new ones and never answers on them: Redis is
    /// "black-holed", as behind a firewall that drops packets, so every call waits for its timeout.
    pub async fn black_hole(&self) -> std::io::Result<()> {
        self.stop_now().await;
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(self.address)?;
        let listener = socket.listen(128)?;
        let swallow = tokio::spawn(async move {
            // Held, never read nor written, until `stop` or `resume` aborts this task.
            let mut held = Vec::new();
            while let Ok((inbound, _)) = listener.accept().await {
                held.push(inbound);
            }
        });
        self.tasks().push(swallow);
        Ok(())
    }

    /// Like `resume`, right after `black_hole` or `stop`: waits until the aborted tasks have let
    /// go of the port before listening on it again.
    pub async fn resume_now(&self) -> std::io::Result<()> {
        self.stop_now().await;
        self.resume()
    }

    /// Like `stop`, and waits until every task has ended, so that the port is free again.
    async fn stop_now(&self) {
        let tasks: Vec<_> = self.tasks().drain(..).collect();
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port: Redis is "back".
    pub fn resume(&self) -> std::io::Result<()> {
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(self.address)?;
        self.serve(socket)
    }
}

impl Drop for ToggleProxy {
    fn drop(&mut self) {
        self.stop();
    }
}
