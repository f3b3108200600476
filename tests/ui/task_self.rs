struct Counter {
    count: u64,
}

impl Counter {
    #[mproc::task]
    fn total(&self) -> u64 {
        self.count
    }
}

fn main() {}
