//! A TCP proxy a test can cut: while cut, every open connection is dropped and new ones
//! are accepted and then left unanswered, as a network partition looks to a client
//! (its requests time out; nothing is refused).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};

pub struct Proxy {
    pub url: String,
    cut: Arc<AtomicBool>,
    /// Bumped on every cut: connections opened before it end.
    generation: Arc<AtomicU64>,
}

impl Proxy {
    /// A proxy to `upstream` (`http://host:port`).
    pub fn start(upstream: &str) -> Self {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .parse()
            .expect("the upstream is http://address:port");
        let cut = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(AtomicU64::new(0));
        let (sender, receiver) = std::sync::mpsc::channel();
        let (cut_flag, generations) = (cut.clone(), generation.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the proxy's runtime starts");
            runtime.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind 127.0.0.1");
                sender
                    .send(listener.local_addr().expect("a local address"))
                    .expect("the test waits for the address");
                while let Ok((client, _)) = listener.accept().await {
                    let (cut, generations) = (cut_flag.clone(), generations.clone());
                    tokio::spawn(relay(client, upstream, cut, generations));
                }
            });
        });
        let address = receiver.recv().expect("the proxy reports its address");
        Self {
            url: format!("http://{address}"),
            cut,
            generation,
        }
    }

    /// Partitions the client from the upstream until [`Proxy::restore`].
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    cut: Arc<AtomicBool>,
    generations: Arc<AtomicU64>,
) {
    let born = generations.load(Ordering::SeqCst);
    let cut_now = || cut.load(Ordering::SeqCst) || generations.load(Ordering::SeqCst) != born;
    if cut_now() {
        // Hold the connection open and silent while the cut lasts.
        while cut.load(Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let copy = tokio::io::copy_bidirectional(&mut client, &mut server);
    tokio::pin!(copy);
    loop {
        tokio::select! {
            _ = &mut copy => return,
            _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => {
                if cut_now() {
                    return;
                }
            }
        }
    }
}
