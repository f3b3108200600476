struct Report {
    lines: usize,
}

#[mproc::task]
fn count(text: String) -> Report {
    Report { lines: text.lines().count() }
}

fn main() {}
