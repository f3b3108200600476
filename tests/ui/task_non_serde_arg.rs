struct Job {
    id: u64,
}

#[mproc::task]
fn run(job: Job) -> u64 {
    job.id
}

fn main() {}
