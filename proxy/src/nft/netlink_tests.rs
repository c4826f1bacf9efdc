//! Unit tests of the netlink encoding: batch framing and element chunking, table dumps.

use super::*;

#[test]
fn batches_frame_messages_and_chunk_elements() {
    let mut ops = vec![Op::AddTable];
    for i in 0..3000u16 {
        ops.push(Op::AddElement(
            "service-nodeports".into(),
            Key::Port(Proto::Tcp, i),
            Some(Verdict::Goto("external-ABCDEFGH-ns/name/tcp/http".into())),
        ));
    }
    let batch = encode(&Transaction::on("kube-proxy-3", ops));
    // begin, table, element chunks, end
    assert!(batch.origin.len() > 4, "{}", batch.origin.len());
    assert_eq!(batch.origin.first(), Some(&None));
    assert_eq!(batch.origin[1], Some((0, 0)));
    assert_eq!(batch.origin[2], Some((0, 1)));
    let mut at = 0;
    let mut messages = 0;
    while at < batch.buf.len() {
        let len = u32::from_ne_bytes([batch.buf[at], batch.buf[at + 1], batch.buf[at + 2], batch.buf[at + 3]]);
        assert!((20..65536).contains(&len), "message length {len}");
        at += len as usize;
        messages += 1;
    }
    assert_eq!(at, batch.buf.len());
    assert_eq!(messages, batch.origin.len());
}

/// One netlink message: header, nfgenmsg, then `attrs` (already framed).
fn message(kind: u16, attrs: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&u32::try_from(20 + attrs.len()).unwrap_or(0).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&[0; 10]);
    out.extend_from_slice(&[NFPROTO_IPV4, 0, 0, 0]);
    out.extend_from_slice(attrs);
    out
}

#[test]
fn table_dumps_parse_to_names_until_done() {
    let table = |name: &str| {
        let mut w = Writer { buf: Vec::new() };
        w.be32(3, 0); // NFTA_TABLE_FLAGS before the name
        w.string(1, name);
        message((NFNL_SUBSYS_NFTABLES << 8) | MSG_NEWTABLE, &w.buf)
    };
    let mut buf = table("kube-proxy");
    buf.extend(table("kube-proxy-12"));
    let (mut names, mut done) = (Vec::new(), false);
    parse_table_dump(&buf, &mut names, &mut done).expect("parse");
    assert_eq!(names, ["kube-proxy", "kube-proxy-12"]);
    assert!(!done, "the dump goes on in the next buffer");
    let end = message(NLMSG_DONE, &[0; 4]);
    parse_table_dump(&end, &mut names, &mut done).expect("parse");
    assert!(done);
    let mut error = message(NLMSG_ERROR, &[]);
    error.truncate(16);
    error.extend_from_slice(&(-1i32).to_ne_bytes()); // -EPERM
    error[..4].copy_from_slice(&20u32.to_ne_bytes());
    let refused = parse_table_dump(&error, &mut names, &mut done);
    assert!(
        matches!(
            refused,
            Err(NftError::Kernel {
                errno: nix::errno::Errno::EPERM,
                ..
            })
        ),
        "{refused:?}"
    );
}
