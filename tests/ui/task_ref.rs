#[derive(serde::Serialize, serde::Deserialize)]
struct Config {
    threads: usize,
}

#[mproc::task]
fn threads(config: &Config) -> usize {
    config.threads
}

fn main() {}
