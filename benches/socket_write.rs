//! What one response costs the kernel to take, written as the writer could
//! write it: `writev(2)` of the head and the body as separate slices, or
//! the body copied behind the head and one `send(2)`. The figures behind
//! the writer's choice (`JOIN_MAX` in `src/response/mod.rs`: bodies up to
//! 4 KiB, or that fit the room the head's buffer has, are joined to it).
//!
//! A blocking loopback TCP pair; a thread drains the reading end. Pin the
//! whole process to one CPU so that the reader's work (the same for both
//! ways) counts in every figure and the difference is the writer's:
//! `taskset -c 0 cargo bench --bench socket_write` (add `-- --quick` for a
//! short, rougher run).

use std::hint::black_box;
use std::io::{IoSlice, Read, Write};
use std::net::{TcpListener, TcpStream};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// About the size of `examples/bench_server`'s response head.
const HEAD_BYTES: usize = 130;

fn socket_write(c: &mut Criterion) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local address");
    let reader = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut buf = vec![0u8; 1 << 20];
        while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
    });
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let head = vec![b'h'; HEAD_BYTES];
    let mut joined = Vec::new();

    let mut group = c.benchmark_group("socket_write");
    for body_len in [13, 1024, 4096, 8192] {
        let body = vec![b'b'; body_len];
        group.throughput(Throughput::Bytes((HEAD_BYTES + body_len) as u64));
        group.bench_with_input(
            BenchmarkId::new("writev_head_body", body_len),
            &body,
            |b, body| {
                b.iter(|| {
                    let slices = [IoSlice::new(&head), IoSlice::new(body)];
                    let n = stream.write_vectored(black_box(&slices)).expect("writev");
                    assert_eq!(n, HEAD_BYTES + body.len(), "short write");
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("copy_then_send", body_len),
            &body,
            |b, body| {
                b.iter(|| {
                    joined.clear();
                    joined.extend_from_slice(&head);
                    joined.extend_from_slice(black_box(body));
                    let n = stream.write(&joined).expect("send");
                    assert_eq!(n, HEAD_BYTES + body.len(), "short write");
                })
            },
        );
    }
    group.finish();
    drop(stream);
    reader.join().expect("reader");
}

criterion_group!(benches, socket_write);
criterion_main!(benches);
