//! Text sources: every line read exactly once, in order, whatever the split count.

use ember::prelude::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn every_line_exactly_once(
        lines in prop::collection::vec("[a-z ]{0,12}", 0..40),
        crlf in any::<bool>(),
        trailing_newline in any::<bool>(),
        splits in 1usize..9,
        workers in 1usize..4,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        let sep = if crlf { "\r\n" } else { "\n" };
        let mut text = lines.join(sep);
        if trailing_newline && !lines.is_empty() {
            text.push_str(sep);
        }
        std::fs::write(&path, &text).unwrap();
        // What a line reader sees: a final empty line only exists if written before a newline.
        let mut expected: Vec<String> = lines.clone();
        if !trailing_newline && expected.last().is_some_and(|l| l.is_empty()) {
            expected.pop();
        }
        let conf = Conf::new().with("ember.master", &format!("local[{workers}]")).unwrap();
        let (got, parsed) = ember::engine::run(conf, move |ctx| {
            let lines = ctx.text_file(&path, splits).unwrap().collect().unwrap();
            // Parsing borrowed lines drops and keeps exactly what a map over owned ones would.
            let parsed = ctx
                .text_file_filter_map(&path, splits, |l| (l.len() % 2 == 0).then(|| l.to_uppercase()))
                .unwrap()
                .collect()
                .unwrap();
            (lines, parsed)
        })
        .unwrap();
        let want_parsed: Vec<String> =
            expected.iter().filter(|l| l.len() % 2 == 0).map(|l| l.to_uppercase()).collect();
        prop_assert_eq!(got, expected);
        prop_assert_eq!(parsed, want_parsed);
    }
}

#[test]
fn directories_read_visible_files_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.txt"), "3\n4\n").unwrap();
    std::fs::write(dir.path().join("a.txt"), "1\n2\n").unwrap();
    std::fs::write(dir.path().join("_SUCCESS"), "").unwrap();
    std::fs::write(dir.path().join(".hidden"), "x\n").unwrap();
    let p = dir.path().to_path_buf();
    let got = ember::engine::run(Conf::new(), move |ctx| {
        ctx.text_file(&p, 5).unwrap().collect().unwrap()
    })
    .unwrap();
    assert_eq!(got, vec!["1", "2", "3", "4"]);
}

/// Without a partition count, `text_file` splits into the default parallelism (the number of
/// workers, or `ember.default.parallelism`).
#[test]
fn text_file_without_a_partition_count_uses_the_default_parallelism() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lines.txt");
    let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&path, text).unwrap();
    for (conf, want) in [
        (Conf::new().with("ember.master", "local[3]").unwrap(), 3),
        (
            Conf::new()
                .with("ember.master", "local[2]")
                .unwrap()
                .with("ember.default.parallelism", "5")
                .unwrap(),
            5,
        ),
    ] {
        let p = path.clone();
        let (parts, lines) = ember::engine::run(conf, move |ctx| {
            let rdd = ctx.text_file(&p, None).unwrap();
            (rdd.num_partitions(), rdd.count().unwrap())
        })
        .unwrap();
        assert_eq!((parts, lines), (want, 1000));
    }
}
