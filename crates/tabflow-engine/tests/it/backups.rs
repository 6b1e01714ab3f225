//! Backups of large files (issue #17, bounded memory): a workbook's download goes to a
//! temporary file as it arrives and into the store in 4 MiB pieces, so staging a workbook of
//! any size costs memory of one piece, not of the file. The emulator serves a 160 MiB workbook
//! generated as it is sent; the test runs in a child process of its own (this test binary,
//! this one test) so that its peak resident memory (`VmHWM`) is its own, and checks that the
//! peak grew by far less than the file while the stored backup has every byte.

use sha2::Digest;
use tabflow_client::{Client, Config, Credentials, Secret};
use tabflow_engine::store::{BACKUP_CHUNK_BYTES, Store};

const CHILD: &str = "TABFLOW_TEST_LARGE_BACKUP_CHILD";
const SIZE: u64 = 160 << 20;
/// Allowed growth of the peak: a piece being stored, one in the hasher's path, the HTTP
/// buffers and SQLite's cache — never the file.
const ALLOWED_GROWTH: u64 = 48 << 20;

/// Peak resident memory of this process so far, in bytes (Linux `VmHWM`).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_workbook_is_backed_up_with_bounded_memory() {
    if std::env::var_os(CHILD).is_none() {
        // The parent: run this test alone in a fresh process and report what it saw.
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "backups::a_large_workbook_is_backed_up_with_bounded_memory", "--nocapture"])
            .arg("--test-threads=1")
            .env(CHILD, "1")
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "the child failed:\n{text}");
        // The harness may print the test's name on the same line first.
        let line = text.lines().find_map(|l| l.find("large backup:").map(|at| &l[at..]));
        println!("{}", line.unwrap_or_else(|| panic!("the child ran the test:\n{text}")));
        return;
    }
    let mut site = tabflow_site::generate::demo();
    site.shift_time_to(chrono::Utc::now());
    let wb = site.workbooks.first().expect("a workbook").id.clone();
    let mut options = tabflow_emulator::Options::new(site);
    options.large_files.insert(wb.clone(), SIZE);
    let emu = tabflow_emulator::start(options).await.unwrap();
    let creds = Credentials::Pat { name: "tabflow".into(), secret: Secret::new("tabflow") };
    let client = Client::connect(Config::new(emu.url.clone(), "demo", creds)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).await.unwrap();
    // What the file holds, hashed as it is generated (never held either).
    let mut want = sha2::Sha256::new();
    let mut piece = Vec::with_capacity(1 << 20);
    for i in 0..SIZE {
        piece.push(tabflow_emulator::server::large_file_byte(i));
        if piece.len() == 1 << 20 {
            want.update(&piece);
            piece.clear();
        }
    }
    want.update(&piece);
    let want: String = want.finalize().iter().map(|b| format!("{b:02x}")).collect();
    drop(piece);

    let before = peak_rss();
    let mut file = tokio::fs::File::from_std(tempfile::tempfile().unwrap());
    let (name, size) =
        client.download_workbook_to(&tabflow_wire::ids::WorkbookId::new(&wb), true, &mut file).await.unwrap();
    assert_eq!(size, SIZE, "the whole file arrived");
    assert!(name.ends_with(".twbx"), "{name}");
    let (sha, stored) = store.put_backup_file("r-large", &wb, &name, &mut file).await.unwrap();
    let growth = peak_rss().saturating_sub(before);
    println!("large backup: {} MiB stored, peak resident memory grew {} MiB", SIZE >> 20, growth >> 20);
    assert_eq!((sha.as_str(), stored), (want.as_str(), SIZE), "the stored backup is the file");
    assert!(
        growth < ALLOWED_GROWTH,
        "staging a {} MiB file grew the peak by {} MiB: it was held in memory",
        SIZE >> 20,
        growth >> 20
    );
    // Stored in pieces, each checked again without reading the whole.
    assert_eq!(store.backup_sha("r-large", &wb).await.unwrap().as_deref(), Some(want.as_str()));
    assert_eq!(store.backup_intact("r-large", &wb).await.unwrap(), Some(true));
    assert!(peak_rss().saturating_sub(before) < ALLOWED_GROWTH, "checking it is bounded too");
    assert_eq!(BACKUP_CHUNK_BYTES, 4 << 20);
    store.close().await;
    emu.stop().await;
}

#[tokio::test]
async fn a_small_backup_reads_back_whole_and_a_damaged_piece_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = Store::open(&path).await.unwrap();
    // Just over two pieces.
    let data: Vec<u8> =
        (0..(2 * BACKUP_CHUNK_BYTES as u64 + 17)).map(tabflow_emulator::server::large_file_byte).collect();
    let mut file = tokio::fs::File::from_std(tempfile::tempfile().unwrap());
    tokio::io::AsyncWriteExt::write_all(&mut file, &data).await.unwrap();
    let (sha, size) = store.put_backup_file("r-1", "wb-1", "Book.twbx", &mut file).await.unwrap();
    assert_eq!(size, data.len() as u64);
    let (name, bytes) = store.backup_of("r-1", "wb-1").await.unwrap().expect("stored");
    assert_eq!((name.as_str(), bytes == data), ("Book.twbx", true));
    assert_eq!(store.backup("wb-1").await.unwrap().map(|(_, b)| b.len()), Some(data.len()));
    assert_eq!(store.backup_sha("r-1", "wb-1").await.unwrap(), Some(sha));
    assert_eq!(store.backup_intact("r-1", "wb-1").await.unwrap(), Some(true));
    assert_eq!(store.backup_intact("r-1", "wb-none").await.unwrap(), None);
    // Storing again replaces it (no stale piece left behind).
    let mut small = tokio::fs::File::from_std(tempfile::tempfile().unwrap());
    tokio::io::AsyncWriteExt::write_all(&mut small, b"<workbook/>").await.unwrap();
    store.put_backup_file("r-1", "wb-1", "Book.twb", &mut small).await.unwrap();
    assert_eq!(store.backup_of("r-1", "wb-1").await.unwrap().map(|(_, b)| b), Some(b"<workbook/>".to_vec()));
    // A piece edited behind tabflow's back: the backup is damaged, by name.
    store.put_backup_file("r-2", "wb-2", "Book.twbx", &mut file).await.unwrap();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    sqlx::query("UPDATE backup_chunks SET bytes = x'00' WHERE run_id = 'r-2' AND n = 1").execute(&pool).await.unwrap();
    pool.close().await;
    assert_eq!(store.backup_intact("r-2", "wb-2").await.unwrap(), Some(false));
    let e = store.backup_of("r-2", "wb-2").await.expect_err("damaged");
    assert!(e.to_string().contains("wb-2"), "{e}");
    store.close().await;
}

/// The emulator of [`a_large_backup_is_restored_piece_by_piece_with_bounded_memory`] runs in
/// a process of its own (it keeps what is uploaded in memory): this test binary with this
/// variable set serves the demo site, prints its URL and stops when its stdin closes.
const EMULATOR_CHILD: &str = "TABFLOW_TEST_RESTORE_EMULATOR_CHILD";
const RESTORE_TEST: &str = "backups::a_large_backup_is_restored_piece_by_piece_with_bounded_memory";
const RESTORE_SIZE: u64 = 96 << 20;

/// Byte `i` of the restore test's padding: letters only (inside an XML comment).
fn padding_byte(i: u64) -> u8 {
    b'a' + ((i.wrapping_mul(7).wrapping_add(i / 1021)) % 26) as u8
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_backup_is_restored_piece_by_piece_with_bounded_memory() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if std::env::var_os(EMULATOR_CHILD).is_some() {
        let mut site = tabflow_site::generate::demo();
        site.shift_time_to(chrono::Utc::now());
        let emu = tabflow_emulator::start(tabflow_emulator::Options::new(site)).await.unwrap();
        println!("emulator-url: {}", emu.url);
        let _ = tokio::io::stdin().read_to_end(&mut Vec::new()).await;
        emu.stop().await;
        return;
    }
    if std::env::var_os(CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", RESTORE_TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "the child failed:\n{text}");
        let line = text.lines().find_map(|l| l.find("large restore:").map(|at| &l[at..]));
        println!("{}", line.unwrap_or_else(|| panic!("the child ran the test:\n{text}")));
        return;
    }
    // The emulator, in its own process.
    let mut emu = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", RESTORE_TEST, "--nocapture", "--test-threads=1"])
        .env(EMULATOR_CHILD, "1")
        .env_remove(CHILD)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(emu.stdout.take().unwrap());
    let url = loop {
        let mut line = String::new();
        let n = tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut line).await.unwrap();
        assert!(n > 0, "the emulator process ended before it said its URL");
        if let Some(at) = line.find("emulator-url: ") {
            break line[at + "emulator-url: ".len()..].trim().to_string();
        }
    };
    let creds = Credentials::Pat { name: "tabflow".into(), secret: Secret::new("tabflow") };
    let client = Client::connect(Config::new(url, "demo", creds)).await.unwrap();
    let wbs = client.workbooks().collect().await.unwrap();
    let wb = wbs.first().and_then(|w| w.id.clone()).expect("a workbook");
    let wid = tabflow_wire::ids::WorkbookId::new(&wb);

    // The backup: the workbook's own document and a comment of padding after it, written to a
    // file and stored in pieces (neither ever whole in memory).
    let mut doc = tokio::fs::File::from_std(tempfile::tempfile().unwrap());
    client.download_workbook_to(&wid, false, &mut doc).await.unwrap();
    tokio::io::AsyncSeekExt::rewind(&mut doc).await.unwrap();
    let mut twb = Vec::new();
    doc.read_to_end(&mut twb).await.unwrap();
    assert!(twb.starts_with(b"<?xml"), "a .twb document");
    let mut file = tokio::fs::File::from_std(tempfile::tempfile().unwrap());
    let mut want = sha2::Sha256::new();
    let head = [twb.as_slice(), b"\n<!-- "].concat();
    let pad = RESTORE_SIZE - head.len() as u64 - 4;
    file.write_all(&head).await.unwrap();
    want.update(&head);
    let mut piece = Vec::with_capacity(1 << 20);
    for i in 0..pad {
        piece.push(padding_byte(i));
        if piece.len() == 1 << 20 {
            file.write_all(&piece).await.unwrap();
            want.update(&piece);
            piece.clear();
        }
    }
    piece.extend_from_slice(b" -->");
    file.write_all(&piece).await.unwrap();
    want.update(&piece);
    drop(piece);
    let want: String = want.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).await.unwrap();
    let (sha, size) = store.put_backup_file("r-big", &wb, "Big.twb", &mut file).await.unwrap();
    assert_eq!((sha.as_str(), size), (want.as_str(), RESTORE_SIZE));
    drop(file);

    // Restored over the workbook from the store, piece by piece.
    let before = peak_rss();
    let saved = store.backup_pieces("r-big", &wb).await.unwrap().expect("the backup");
    assert_eq!((saved.filename.as_str(), saved.size), ("Big.twb", RESTORE_SIZE));
    tabflow_engine::ops::republish(&client, &wb, "Big.twb", saved.upload()).await.unwrap();
    let growth = peak_rss().saturating_sub(before);
    println!(
        "large restore: {} MiB republished from the store, peak resident memory grew {} MiB",
        RESTORE_SIZE >> 20,
        growth >> 20
    );
    assert!(
        growth < ALLOWED_GROWTH,
        "restoring a {} MiB backup grew the peak by {} MiB: it was held in memory",
        RESTORE_SIZE >> 20,
        growth >> 20
    );
    // The server has every byte: its file now is the backup.
    let mut back = tokio::fs::File::from_std(tempfile::tempfile().unwrap());
    let (_, got_size) = client.download_workbook_to(&wid, false, &mut back).await.unwrap();
    assert_eq!(got_size, RESTORE_SIZE);
    tokio::io::AsyncSeekExt::rewind(&mut back).await.unwrap();
    let mut got = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = back.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got.update(&buf[..n]);
    }
    let got: String = got.finalize().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(got, want, "the republished file is the backup");
    store.close().await;
    drop(emu.stdin.take());
    let _ = emu.wait().await;
}

#[tokio::test]
async fn a_damaged_backup_is_not_published_and_says_which() {
    let mut site = tabflow_site::generate::demo();
    site.shift_time_to(chrono::Utc::now());
    let emu = tabflow_emulator::start(tabflow_emulator::Options::new(site)).await.unwrap();
    let creds = Credentials::Pat { name: "tabflow".into(), secret: Secret::new("tabflow") };
    let client = Client::connect(Config::new(emu.url.clone(), "demo", creds)).await.unwrap();
    let wb = client.workbooks().collect().await.unwrap().first().and_then(|w| w.id.clone()).expect("a workbook");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = Store::open(&path).await.unwrap();
    // Three pieces (larger than one upload chunk): the upload session path.
    let data: Vec<u8> = (0..(2 * BACKUP_CHUNK_BYTES as u64 + 17)).map(padding_byte).collect();
    let mut file = tokio::fs::File::from_std(tempfile::tempfile().unwrap());
    tokio::io::AsyncWriteExt::write_all(&mut file, &data).await.unwrap();
    store.put_backup_file("r-1", &wb, "Book.twb", &mut file).await.unwrap();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    sqlx::query("UPDATE backup_chunks SET bytes = x'00' WHERE run_id = 'r-1' AND n = 2").execute(&pool).await.unwrap();
    pool.close().await;
    let revision = |s: &tabflow_site::Site| s.workbooks.iter().find(|w| w.id == wb).map(|w| w.revision);
    let rev = revision(&emu.emulator.snapshot());
    let saved = store.backup_pieces("r-1", &wb).await.unwrap().expect("the backup");
    let e = tabflow_engine::ops::republish(&client, &wb, "Book.twb", saved.upload()).await.unwrap_err().to_string();
    assert!(e.contains("does not match its checksum") && e.contains(&wb), "{e}");
    assert_eq!(revision(&emu.emulator.snapshot()), rev, "nothing was published");
    // No backup: none to stream.
    assert!(store.backup_pieces("r-1", "wb-none").await.unwrap().is_none());
    store.close().await;
    emu.stop().await;
}
