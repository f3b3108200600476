struct Point {
    x: i32,
}

fn norm(p: Point) -> i32 {
    p.x.abs()
}

#[mproc::main]
fn main() {
    let _ = mproc::par_map!(norm, vec![Point { x: 1 }]);
}
