#[mproc::task]
fn greeting() -> &'static str {
    "hello"
}

fn main() {}
