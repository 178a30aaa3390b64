//! A private PostgreSQL cluster for the tests and benchmarks, from Debian's `postgresql`
//! package: made once with initdb in a folder of its own on a free loopback port, shared by
//! every test process of one build (a file lock makes one of them start it). Each user gets a
//! schema of its own (cheap, unlike a database); schemas of test processes that have ended are
//! dropped when the next process starts.
//!
//! Tests stop what they start: every process that uses the cluster registers its pid under
//! `users/`, and the process that starts the cluster also starts a small watcher (`sh`, detached)
//! that stops it once no registered process has been alive for a few seconds. The test harness
//! runs no destructor at exit, and under nextest every test is a process of its own, so the
//! last one out cannot know it is last; the watcher can. The grace period lets the next process
//! of one run find the cluster still up.
//!
//! PostgreSQL refuses to run as root, so as root it runs as the `postgres` user (`runuser`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// A running cluster.
pub struct Cluster {
    /// Its loopback port.
    pub port: u16,
    bin: PathBuf,
    /// The CA that issued the cluster's certificate.
    pub ca: PathBuf,
    data: PathBuf,
    durable: bool,
}

/// Which backend the store-using integration tests run on: `ARCLIST_TEST_STORE=postgresql`
/// runs them on PostgreSQL (CI does both).
pub fn tests_use_postgres() -> bool {
    std::env::var("ARCLIST_TEST_STORE").is_ok_and(|v| v.starts_with("postgres"))
}

/// Debian's server binaries (the newest version installed).
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (tests/interop/install.sh installs Debian's postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("an initdb under /usr/lib/postgresql/*/bin")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Runs one of PostgreSQL's programs, as `postgres` when we are root.
fn pg_command(bin: &Path, program: &str) -> Command {
    let path = bin.join(program);
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

fn run(mut c: Command, what: &str) -> String {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The folder for a cluster named `name`, owned by whoever runs PostgreSQL.
fn home(name: &str) -> PathBuf {
    // Under /tmp rather than target/: the postgres user must be able to reach it. The build
    // folder's path keeps two checkouts' clusters apart.
    let build = env!("CARGO_TARGET_TMPDIR");
    let tag: u32 = build.bytes().fold(2166136261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16777619)
    });
    PathBuf::from(format!("/tmp/arclist-pg-{name}-{tag:08x}"))
}

/// A port on 127.0.0.1 for a server a test starts, free when asked. Taken below the kernel's
/// ephemeral range (32768 and up), counting up from a point set by the process id: a port
/// found by binding to port 0 and closing again is one the kernel may give any outgoing
/// connection (or any other test's port 0) before the server binds it, which made tests fail
/// now and then with "Address already in use". Below the range only another caller of this
/// function picks ports: in this process never the same one twice, in another (nextest runs
/// one per test) from another starting point.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    const FIRST: u16 = 20_000;
    const SPAN: u16 = 12_000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = (std::process::id() % u32::from(SPAN)) as u16;
    for _ in 0..SPAN {
        let step = NEXT.fetch_add(1, Ordering::Relaxed) % SPAN;
        let port = FIRST + (start + step) % SPAN;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!(
        "no free port on 127.0.0.1 between {FIRST} and {}",
        FIRST + SPAN
    )
}

/// Gives the new cluster in `data` a server certificate for 127.0.0.1 from a CA of its own
/// (`ca.pem` beside `data`), and a role `tls_only` that may log in over TLS only, so a test can
/// prove a connection was encrypted.
fn with_tls(dir: &Path, data: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("server key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("server params")
        .signed_by(&key, &issuer)
        .expect("server cert");
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("ca file");
    std::fs::write(data.join("server.crt"), cert.pem()).expect("cert");
    let key_file = data.join("server.key");
    std::fs::write(&key_file, key.serialize_pem()).expect("key");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).expect("mode");
    let hba = data.join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).expect("pg_hba.conf");
    std::fs::write(
        &hba,
        format!(
            "hostssl all tls_only 127.0.0.1/32 trust\nhost all tls_only 127.0.0.1/32 reject\n{rules}"
        ),
    )
    .expect("pg_hba.conf");
    give_to_postgres(data);
}

/// Makes `path` (and all under it) the `postgres` user's when we are root, who runs the cluster.
fn give_to_postgres(path: &Path) {
    if is_root() {
        let mut c = Command::new("chown");
        c.args(["-R", "postgres:postgres"]).arg(path);
        run(c, "chown");
    }
}

/// Starts (or finds running) the cluster `name`; `durable` keeps PostgreSQL's fsync on (for
/// benchmarks that compare with the embedded store, which flushes), else it is off for speed.
pub fn start(name: &str, durable: bool) -> Cluster {
    let bin = bin_dir();
    let dir = home(name);
    std::fs::create_dir_all(&dir).expect("cluster folder");
    let lock = std::fs::File::create(dir.join("lock")).expect("lock file");
    lock.lock().expect("cluster lock");
    let data = dir.join("data");
    let port_file = dir.join("port");
    let running = data.join("postmaster.pid").is_file() && {
        let mut status = pg_command(&bin, "pg_ctl");
        status.arg("status").arg("-D").arg(&data);
        status.output().is_ok_and(|o| o.status.success())
    };
    if !running {
        if !data.join("PG_VERSION").is_file() {
            let _ = std::fs::remove_dir_all(&data);
            std::fs::create_dir_all(&data).expect("data folder");
            give_to_postgres(&dir);
            let mut initdb = pg_command(&bin, "initdb");
            initdb
                .args([
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "-D",
                ])
                .arg(&data);
            run(initdb, "initdb");
            with_tls(&dir, &data);
        }
        let port = free_port();
        let mut start = pg_command(&bin, "pg_ctl");
        start.args(["-w", "-t", "60", "-D"]).arg(&data).args([
            "-l",
            &data.join("log").display().to_string(),
            "-o",
            &server_options(port, durable, &data),
            "start",
        ]);
        run(start, "pg_ctl start");
        std::fs::write(&port_file, port.to_string()).expect("port file");
    }
    // A cluster left running by a run from before the watcher existed, or whose watcher was
    // killed, gets one.
    let watched = std::fs::read_to_string(dir.join("watcher"))
        .is_ok_and(|pid| Path::new("/proc").join(pid.trim()).is_dir());
    if !running || !watched {
        stop_when_unused(&bin, &dir);
    }
    let users = dir.join("users");
    std::fs::create_dir_all(&users).expect("users folder");
    std::fs::write(users.join(std::process::id().to_string()), "").expect("register as a user");
    let port: u16 = std::fs::read_to_string(&port_file)
        .expect("port file")
        .trim()
        .parse()
        .expect("a port");
    let cluster = Cluster {
        port,
        bin,
        ca: dir.join("ca.pem"),
        data: data.clone(),
        durable,
    };
    cluster.sql(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tls_only') \
         THEN CREATE ROLE tls_only LOGIN SUPERUSER; END IF; END $$",
    );
    cluster.drop_schemas_of_ended_processes();
    drop(lock);
    cluster
}

/// The server's settings, for `pg_ctl start -o`.
fn server_options(port: u16, durable: bool, data: &Path) -> String {
    let fsync = if durable { "on" } else { "off" };
    // What each statement costs the database, for the fan-out bench to print.
    let statements = match std::env::var_os(STATEMENTS).is_some() {
        true => " -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all",
        false => "",
    };
    format!(
        "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
         -c fsync={fsync} -c full_page_writes={fsync} -c max_connections=400 \
         -c shared_buffers=128MB -c ssl=on{statements}",
        data.display()
    )
}

/// Set, a cluster started now counts each statement's time (`pg_stat_statements`).
pub const STATEMENTS: &str = "ARCLIST_BENCH_PG_STATEMENTS";

/// Starts the watcher that stops the cluster in `dir` once none of its registered users is
/// alive (checked under the cluster's lock, so a process starting up either finds it running
/// and registers, or finds it stopped and starts it again).
fn stop_when_unused(bin: &Path, dir: &Path) {
    let stop = pg_command(bin, "pg_ctl");
    let stop = std::iter::once(stop.get_program())
        .chain(stop.get_args())
        .map(|a| format!("\"{}\"", a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ");
    let script = format!(
        "cd '{dir}' || exit 0
         echo $$ > watcher
         while sleep 4; do
           flock lock sh -c '
             for f in users/*; do
               [ -e \"$f\" ] || continue
               if [ -d /proc/${{f##*/}} ]; then exit 1; fi
               rm -f \"$f\"
             done
             {stop} stop -m fast -D data >/dev/null 2>&1
             rm -f port' && exit 0
         done",
        dir = dir.display(),
    );
    // `setsid -f` forks the watcher off and returns at once: it outlives this process, and
    // no child of ours is left unwaited.
    Command::new("setsid")
        .args(["-f", "sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("the cluster's watcher (sh, setsid)");
}

impl Cluster {
    /// The server's process id (the postmaster's, from its pid file), for the benches'
    /// readings of the database's CPU time.
    #[allow(dead_code)]
    pub fn server_pid(&self) -> Option<u32> {
        let pid_file = std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        pid_file.lines().next()?.trim().parse().ok()
    }

    /// Restarts the server the way an operator would (`pg_ctl restart -m fast`): every
    /// connection is cut and the server is back on the same port.
    pub fn restart(&self) {
        let mut c = pg_command(&self.bin, "pg_ctl");
        // Its log to the file, as at the first start: the server must not hold pg_ctl's
        // output open (which `run` reads to its end).
        c.args(["restart", "-m", "fast", "-w", "-t", "60", "-D"])
            .arg(&self.data)
            .args(["-l", &self.data.join("log").display().to_string()]);
        run(c, "pg_ctl restart");
    }

    /// Stops the server (`pg_ctl stop -m fast`): every connection is cut, and new ones are
    /// refused until [`Cluster::start_again`]. Only for a cluster of the caller's own
    /// ([`start`] with a name of its own): the shared one serves other tests.
    pub fn stop(&self) {
        let mut c = pg_command(&self.bin, "pg_ctl");
        c.args(["stop", "-m", "fast", "-w", "-t", "60", "-D"])
            .arg(&self.data);
        run(c, "pg_ctl stop");
    }

    /// Starts the server [`Cluster::stop`] stopped, on the same port with the same settings.
    pub fn start_again(&self) {
        let mut c = pg_command(&self.bin, "pg_ctl");
        c.args(["start", "-w", "-t", "60", "-D"])
            .arg(&self.data)
            .args(["-l", &self.data.join("log").display().to_string(), "-o"])
            .arg(server_options(self.port, self.durable, &self.data));
        run(c, "pg_ctl start");
    }

    /// Runs SQL in the `postgres` database; returns psql's unaligned output.
    pub fn sql(&self, sql: &str) -> String {
        let mut c = Command::new(self.bin.join("psql"));
        c.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-p",
            &self.port.to_string(),
            "-d",
            "postgres",
            "-c",
            sql,
        ]);
        run(c, &format!("psql {sql}"))
    }

    /// A fresh, empty schema of this process, and the store URL that works in it.
    pub fn fresh_store(&self) -> String {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let schema = format!(
            "t_{}_{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        self.sql(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ));
        self.url(&schema)
    }

    /// The store URL for `schema`.
    pub fn url(&self, schema: &str) -> String {
        format!(
            "postgresql://postgres@127.0.0.1:{}/postgres?sslmode=disable&options=-c%20search_path%3D{schema}",
            self.port
        )
    }

    /// Drops the test schemas (`t_PID_N`) whose process is gone, so a cluster kept between
    /// runs does not grow with every run.
    fn drop_schemas_of_ended_processes(&self) {
        let schemas = self.sql("SELECT nspname FROM pg_namespace WHERE nspname LIKE 't\\_%'");
        for schema in schemas.lines() {
            let pid = schema.split('_').nth(1).unwrap_or("");
            if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
                self.sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }
}

/// The tests' cluster (fsync off), started once per process.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| start("tests-v2", false))
}

/// The `store = …` value for a test's server file: a fresh schema on PostgreSQL when the
/// tests run on it, else the store file under `var/`.
pub fn store_for_test() -> String {
    match tests_use_postgres() {
        true => cluster().fresh_store(),
        false => "var/store.redb".to_string(),
    }
}
