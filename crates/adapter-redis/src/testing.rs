//! A TCP proxy in front of Redis that tests can stop and resume, to take Redis away from a running
//! server (connections are cut and new ones refused) without touching the shared Redis itself.

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
