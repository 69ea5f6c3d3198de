use ember_engine::prelude::*;

#[test]
fn smoke() {
    for w in [1, 2, 4] {
        let conf = Conf::new()
            .with("ember.master", &format!("local[{w}]"))
            .unwrap();
        let out = ember_engine::run(conf, |ctx| {
            let r = ctx.range(0, 1000, 1, 7).unwrap();
            let c = r.count().unwrap();
            let s = r.map(|x| (x % 10, x)).reduce_by_key(|a, b| a + b);
            let mut v = s.collect().unwrap();
            v.sort();
            let g = r
                .map(|x| (x % 3, x))
                .group_by_key()
                .map_values(|v| v.len())
                .collect()
                .unwrap();
            let j = r
                .map(|x| (x % 5, x))
                .join(
                    &ctx.parallelize((0..5i64).map(|k| (k, k * 10)).collect(), 3)
                        .unwrap(),
                )
                .count()
                .unwrap();
            let sorted = r
                .map(|x| ((x * 7919) % 1000, x))
                .sort_by_key(true, Some(4))
                .unwrap()
                .keys()
                .collect()
                .unwrap();
            println!("{}", s.lineage());
            (c, v, g.len(), j, sorted == (0..1000).collect::<Vec<i64>>())
        })
        .unwrap();
        println!("{w}: {:?}", out);
        assert_eq!(out.0, 1000);
        assert_eq!(out.2, 3);
        assert_eq!(out.3, 1000);
        assert!(out.4);
    }
}
