struct Job {
    id: u64,
}

#[mproc::task]
fn total(jobs: Vec<Job>) -> u64 {
    jobs.iter().map(|job| job.id).sum()
}

fn main() {}
