//! Serves a folder of repositories (`ROOT/ORG/NAME/...`) as a hub-shaped
//! HTTP server on loopback, for the scale bench (bench/scale/run.sh):
//! `hubserve ROOT [ADDR]` prints its URL, then serves until killed.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

fn main() {
    let mut args = std::env::args().skip(1);
    let root = args.next().expect("usage: hubserve ROOT [ADDR]");
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = aisec_remote::hubserver::serve_on(std::path::Path::new(&root), false, &addr)
            .await
            .unwrap();
        println!("{}", s.url);
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    });
}
