// Plans as tests: written in the next commit.
fn main() {}
