#[mproc::task]
fn fill(buffer: &mut Vec<u8>) {
    buffer.push(1);
}

fn main() {}
