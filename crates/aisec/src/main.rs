fn main() {
    println!("aisec");
}
