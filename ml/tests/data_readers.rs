//! Readers against the real files in the repository's data/: MNIST IDX (figures from the data README),
//! scikit-learn's CSV files, and the typed errors for damaged files.

#[path = "../../storage/tests/common/mutate.rs"]
mod mutate;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ember_ml::data::{
    mnist, mnist_files, read_idx, read_idx_from, read_sklearn_csv, CsvReader, DataError, Header,
    IdxType, LabelColumn, Split, Target,
};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
}

fn mnist_dir() -> PathBuf {
    data_dir().join("mnist")
}

fn sklearn(name: &str) -> PathBuf {
    data_dir().join("sklearn").join(name)
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
    path
}

fn class_counts(labels: &[usize], classes: usize) -> Vec<usize> {
    let mut counts = vec![0; classes];
    for &l in labels {
        counts[l] += 1;
    }
    counts
}

#[test]
fn mnist_train_matches_readme_figures() {
    let train = mnist(mnist_dir(), Split::Train).unwrap();
    assert_eq!(train.len(), 60_000);
    assert_eq!(train.features().dim(), (60_000, 784));
    assert_eq!(train.labels().dim(), (60_000, 10));
    assert_eq!(train.feature_shape(), &[1, 28, 28]);
    assert_eq!(train.features_nd().shape(), &[60_000, 1, 28, 28]);
    let labels = train.label_indices();
    assert_eq!(&labels[..10], &[5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    assert_eq!(
        class_counts(&labels, 10),
        vec![5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    // Exactly one 1.0 per one-hot row.
    assert!(train.labels().rows().into_iter().all(|r| r.sum() == 1.0));
    let pixels = train.features().as_slice().unwrap();
    let n = pixels.len() as f64;
    let mean = pixels.iter().map(|&p| f64::from(p)).sum::<f64>() / n;
    let var = pixels
        .iter()
        .map(|&p| (f64::from(p) - mean).powi(2))
        .sum::<f64>()
        / n;
    assert!((mean - 0.13066).abs() < 5e-6, "mean {mean}");
    assert!((var.sqrt() - 0.30811).abs() < 5e-6, "std {}", var.sqrt());
    let (min, max) = pixels
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &p| (a.min(p), b.max(p)));
    assert_eq!((min, max), (0.0, 1.0));
}

#[test]
fn mnist_test_split_and_raw_idx() {
    let test = mnist(mnist_dir(), Split::Test).unwrap();
    assert_eq!(test.len(), 10_000);
    assert_eq!(&test.label_indices()[..10], &[7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    let raw = read_idx(mnist_dir().join("t10k-images-idx3-ubyte.gz")).unwrap();
    assert_eq!(raw.dims, vec![10_000, 28, 28]);
    assert_eq!(raw.kind, IdxType::U8);
    // The scaled features are the raw bytes divided by 255.
    let bytes = raw.as_u8().unwrap();
    for i in (0..bytes.len()).step_by(997) {
        assert_eq!(
            test.features().as_slice().unwrap()[i],
            f32::from(bytes[i]) / 255.0
        );
    }
    // Plain (uncompressed) files and in-memory readers give the same array.
    let plain = gunzip(&mnist_dir().join("t10k-labels-idx1-ubyte.gz"));
    let from_reader = read_idx_from(std::io::Cursor::new(plain.clone()), "labels").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let from_file = read_idx(write(dir.path(), "labels.idx", &plain)).unwrap();
    assert_eq!(from_reader, from_file);
    assert_eq!(from_file.dims, vec![10_000]);
    assert_eq!(from_file.to_f32()[..3], [7.0, 2.0, 1.0]);
}

#[test]
fn idx_errors_are_typed_and_name_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let labels_gz = std::fs::read(mnist_dir().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let labels = gunzip(&mnist_dir().join("t10k-labels-idx1-ubyte.gz"));

    // A gzip file cut in half.
    let cut = write(dir.path(), "cut.gz", &labels_gz[..labels_gz.len() / 2]);
    let err = read_idx(&cut).unwrap_err();
    assert!(
        matches!(&err, DataError::Truncated { path, offset, .. }
            if path == &cut && *offset > 8 && *offset < labels.len() as u64),
        "{err:?}"
    );
    assert!(err.to_string().contains("cut.gz"), "{err}");

    // A plain file cut inside the elements: the offset is where the data ran out.
    let short = write(dir.path(), "short.idx", &labels[..5000]);
    match read_idx(&short).unwrap_err() {
        DataError::Truncated { path, offset, .. } => {
            assert_eq!(path, short);
            assert_eq!(offset, 5000);
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
    // Cut inside the header.
    let header_only = write(dir.path(), "header.idx", &labels[..6]);
    assert!(matches!(
        read_idx(&header_only),
        Err(DataError::Truncated { offset: 6, .. })
    ));

    // Bad magic: non-zero leading bytes, then an unknown type code.
    let mut bad = labels.clone();
    bad[0] = 0x1f;
    bad[1] = 0x00;
    let bad_path = write(dir.path(), "bad.idx", &bad);
    match read_idx(&bad_path).unwrap_err() {
        DataError::BadMagic { path, magic, .. } => {
            assert_eq!(path, bad_path);
            assert_eq!(magic, 0x1f00_0801);
        }
        other => panic!("expected BadMagic, got {other:?}"),
    }
    let mut bad_type = labels.clone();
    bad_type[2] = 0x07;
    let err = read_idx(write(dir.path(), "type.idx", &bad_type)).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::BadMagic {
                magic: 0x0000_0701,
                ..
            }
        ),
        "{err:?}"
    );

    // Trailing bytes after the announced elements.
    let mut long = labels.clone();
    long.extend_from_slice(&[1, 2, 3]);
    let err = read_idx(write(dir.path(), "long.idx", &long)).unwrap_err();
    assert!(matches!(err, DataError::TrailingData { offset, .. } if offset == labels.len() as u64));

    // Corrupt compressed bytes (the CRC or the deflate stream no longer match).
    let mut flipped = labels_gz.clone();
    let mid = flipped.len() / 2;
    for b in &mut flipped[mid..mid + 16] {
        *b ^= 0x5a;
    }
    let err = read_idx(write(dir.path(), "flipped.gz", &flipped)).unwrap_err();
    assert!(
        matches!(err, DataError::Corrupt { .. } | DataError::Truncated { .. }),
        "expected a corrupt-data error, got {err:?}"
    );

    // A damaged CRC in the gzip trailer: all data decompresses, the checksum does not match.
    let mut crc = labels_gz.clone();
    let at = crc.len() - 6;
    crc[at] ^= 1;
    let err = read_idx(write(dir.path(), "crc.gz", &crc)).unwrap_err();
    assert!(matches!(err, DataError::Corrupt { .. }), "{err:?}");

    // Missing file.
    let err = read_idx(dir.path().join("missing.idx")).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }) && err.to_string().contains("missing.idx"));
}

#[test]
fn mnist_rejects_mismatched_and_invalid_files() {
    let dir = tempfile::tempdir().unwrap();
    let images = mnist_dir().join("t10k-images-idx3-ubyte.gz");
    let train_labels = mnist_dir().join("train-labels-idx1-ubyte.gz");
    match mnist_files(&images, &train_labels).unwrap_err() {
        DataError::CountMismatch {
            image_count,
            label_count,
            labels,
            ..
        } => {
            assert_eq!((image_count, label_count), (10_000, 60_000));
            assert_eq!(labels, train_labels);
        }
        other => panic!("expected CountMismatch, got {other:?}"),
    }
    // A label that is not a digit, named with its byte offset.
    let mut labels = gunzip(&mnist_dir().join("t10k-labels-idx1-ubyte.gz"));
    labels[8 + 3] = 12;
    let bad = write(dir.path(), "labels.idx", &labels);
    let err = mnist_files(&images, &bad).unwrap_err();
    assert!(
        matches!(&err, DataError::Invalid { path, .. } if path == &bad),
        "{err:?}"
    );
    assert!(err.to_string().contains("byte 11"), "{err}");
    // Labels given as images.
    let err = mnist_files(&bad, &bad).unwrap_err();
    assert!(matches!(err, DataError::Invalid { .. }), "{err:?}");
    // A directory without MNIST files.
    assert!(matches!(
        mnist(dir.path(), Split::Train),
        Err(DataError::Io { .. })
    ));
}

#[test]
fn sklearn_csv_files_load_with_their_headers() {
    let (iris, header) = read_sklearn_csv(sklearn("iris.csv")).unwrap();
    assert_eq!((header.samples, header.features), (150, 4));
    assert_eq!(
        header.class_names,
        vec!["setosa", "versicolor", "virginica"]
    );
    assert_eq!(iris.features().dim(), (150, 4));
    assert_eq!(iris.features().row(0).to_vec(), vec![5.1, 3.5, 1.4, 0.2]);
    assert_eq!(class_counts(&iris.label_indices(), 3), vec![50, 50, 50]);

    let (wine, _) = read_sklearn_csv(sklearn("wine_data.csv")).unwrap();
    assert_eq!(wine.features().dim(), (178, 13));
    assert_eq!(class_counts(&wine.label_indices(), 3), vec![59, 71, 48]);

    let (cancer, header) = read_sklearn_csv(sklearn("breast_cancer.csv")).unwrap();
    assert_eq!(header.class_names, vec!["malignant", "benign"]);
    assert_eq!(cancer.features().dim(), (569, 30));
    assert_eq!(class_counts(&cancer.label_indices(), 2), vec![212, 357]);

    // Gzip without a header; streaming gives the same rows as reading at once.
    let reader = CsvReader::new(LabelColumn::Last, Target::Classes(10));
    let digits = reader.read(sklearn("digits.csv.gz")).unwrap();
    assert_eq!(digits.features().dim(), (1797, 64));
    assert_eq!(digits.label_indices()[..5], [0, 1, 2, 3, 4]);
    assert_eq!(
        class_counts(&digits.label_indices(), 10)
            .iter()
            .sum::<usize>(),
        1797
    );
    let parts: Vec<_> = reader
        .batches(sklearn("digits.csv.gz"), 500)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        parts.iter().map(|b| b.len()).collect::<Vec<_>>(),
        vec![500, 500, 500, 297]
    );
    assert_eq!(ember_ml::data::MiniBatch::concat(&parts).unwrap(), digits);

    // Regression target in the first column, header skipped.
    let sepal = CsvReader::new(LabelColumn::Index(0), Target::Regression(1))
        .header(Header::Skip(1))
        .read(sklearn("iris.csv"))
        .unwrap();
    assert_eq!(sepal.labels().column(0)[0], 5.1);
    assert_eq!(sepal.features().row(0).to_vec(), vec![3.5, 1.4, 0.2, 0.0]);
}

#[test]
fn csv_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let reader = CsvReader::new(LabelColumn::Last, Target::Classes(3));
    let line_of = |text: &str| {
        let path = write(dir.path(), "t.csv", text.as_bytes());
        match reader
            .clone()
            .header(Header::Sklearn)
            .read(&path)
            .unwrap_err()
        {
            DataError::Csv {
                line,
                path: p,
                what,
            } => {
                assert_eq!(p, path);
                (line, what)
            }
            other => panic!("expected a CSV error, got {other:?}"),
        }
    };
    assert_eq!(line_of("2,2,a,b,c\n1,2,0\n1,x,1\n").0, 3);
    assert_eq!(line_of("2,2,a,b,c\n1,2,0\n1,2,3,1\n").0, 3);
    assert_eq!(line_of("2,2,a,b,c\n1,2,0\n1,2,3\n").0, 3); // class 3 of 3
    assert_eq!(line_of("2,2,a,b,c\n1,2,0\n1,2,1.5\n").0, 3);
    assert_eq!(line_of("2,2,a,b\n1,2,0\n").0, 1); // two names, three classes
    assert_eq!(line_of("x,2,a,b,c\n1,2,0\n").0, 1);
    let (line, what) = line_of("3,2,a,b,c\n1,2,0\n1,2,1\n");
    assert!(line == 3 && what.contains("announces 3"), "{line} {what}");
    let (_, what) = line_of("2,3,a,b,c\n1,2,0\n1,2,1\n");
    assert!(what.contains("announces 3"), "{what}");
    // A good file for contrast, with a blank last line and CRLF endings.
    let path = write(dir.path(), "ok.csv", b"2,2,a,b,c\r\n1,2,0\r\n3,4,2\r\n\r\n");
    let ok = reader.header(Header::Sklearn).read(&path).unwrap();
    assert_eq!(ok.label_indices(), vec![0, 2]);
    assert_eq!(ok.features().row(1).to_vec(), vec![3.0, 4.0]);
}

#[test]
fn idx_mutants_are_errors_or_valid_reads() {
    // A 2 x 3 x 3 u8 array, plain and gzip-compressed.
    let mut plain = vec![0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3];
    plain.extend(0..18u8);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    for (valid, seed) in [(plain, 5u64), (gz, 6)] {
        assert_eq!(
            read_idx_from(std::io::Cursor::new(valid.clone()), "valid")
                .unwrap()
                .len(),
            18
        );
        let mut ok = 0;
        for (i, m) in mutate::mutants(&valid, seed, 2000).into_iter().enumerate() {
            let read =
                std::panic::catch_unwind(|| read_idx_from(std::io::Cursor::new(m), "mutant.idx"))
                    .unwrap_or_else(|_| panic!("mutant {i} (seed {seed}) panicked"));
            match read {
                Ok(a) => {
                    // A valid read holds what its header announces.
                    assert_eq!(a.len(), a.dims.iter().product::<usize>(), "mutant {i}");
                    ok += 1;
                }
                Err(e) => assert!(e.to_string().contains("mutant.idx"), "mutant {i}: {e}"),
            }
        }
        assert!(ok < 2000, "seed {seed}: every mutant read");
    }
}
