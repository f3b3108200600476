fn main() {
    let name = mproc::Value::new(String::from("not plain old data"));
    let _ = name;
}
