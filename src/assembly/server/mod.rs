//! Assembles a running arclist from its configuration: keys, store, DNS, listeners, pipeline,
//! delivery; and takes it apart again, so that a stopped server holds nothing.

mod error;
mod keys;
mod member_digests;
pub mod preflight;
mod prune;
pub mod reload;
pub mod reports;

use crate::auth::Authenticator;
use crate::auth::dns::{LiveConfig, LiveResolver, Resolver};
use crate::auth::spf::SpfEvaluator;
use crate::base::config::Config;
use crate::base::live::Live;
use crate::base::tasks::Tasks;
use crate::stages::directory::Directory;
use crate::stages::forward::Forwarding;
use crate::stages::forward::delivery_hook::ForwardDelivery;
use crate::stages::list::delivery_hook::ListDelivery;
use crate::stages::list::{ListRuntime, Lists};
use crate::stages::pipeline::Pipeline;
use crate::stages::smtp::session::SessionContext;
use crate::stages::smtp::{Listener, ListenerHandle, Protocol};
use crate::state::store::{SpoolId, Store};
use crate::surfaces::admin::ReloadError;
pub use error::StartError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// A running server.
pub struct Server {
    /// The listeners (addresses, shutdown).
    pub listeners: ListenerHandle,
    store: Arc<Store>,
    tasks: Tasks,
    web: Option<SocketAddr>,
    admin: Option<SocketAddr>,
    served: Arc<reload::Served>,
    /// The admin address file, removed at stop.
    admin_file: Option<std::path::PathBuf>,
    /// The local admin socket, removed at stop.
    admin_socket: std::path::PathBuf,
    /// Where Postfix asks which recipients exist, when configured.
    socketmap: Option<SocketAddr>,
}

/// What the SMTP sessions hand the pipeline: ids of freshly spooled messages.
type Feed = (
    mpsc::UnboundedSender<SpoolId>,
    mpsc::UnboundedReceiver<SpoolId>,
);

impl Server {
    /// Starts everything `config` describes. Errors name the file or address at fault; on an
    /// error, whatever had started is stopped again before this returns.
    pub async fn start(config: &Config) -> Result<Server, StartError> {
        let tasks = Tasks::new();
        let started = Self::assemble(config, &tasks).await;
        if started.is_err() {
            tasks.stop().await;
        }
        started
    }

    async fn assemble(config: &Config, tasks: &Tasks) -> Result<Server, StartError> {
        let lists = load_lists(config)?;
        let store = open_store(config).await?;
        let forwarding = Live::new(load_forwarding(config, &store).await?);
        let directory = Directory::new(&config.lists)
            .with_forwarding(forwarding.clone())
            .with_report_address(config.server.dmarc_reports.clone());
        let served = Arc::new(reload::Served {
            store: store.clone(),
            config: Live::new(config.clone()),
            lists: lists.clone(),
            directory: directory.clone(),
            forwarding: forwarding.clone(),
            console_users: std::sync::OnceLock::new(),
        });
        let (resolver, auth) = authenticator(config)?;
        let report_dns = config.server.send_dmarc_reports.then(|| resolver.clone());
        start_delivery(config, &store, resolver, &served, tasks)?;
        let (feed, incoming): Feed = mpsc::unbounded_channel();
        let listeners = start_listeners(config, &served, &auth, feed.clone(), tasks).await?;
        let socketmap = match config.server.socketmap_listen {
            Some(addr) => Some(
                crate::stages::smtp::socketmap::start(addr, directory.clone(), tasks)
                    .await
                    .map_err(StartError::Listen)?,
            ),
            None => None,
        };
        let viewer_auth = auth.clone();
        Pipeline::new(
            store.clone(),
            auth,
            &config.server.hostname,
            directory,
            lists.clone(),
        )
        .with_forwarding(forwarding)
        .with_limits(
            config.server.pipeline.concurrency,
            config.server.pipeline.hold_after_hours * 3600,
        )
        .with_duplicate_window((config.server.retention.duplicates_days.max(0.0) * 86_400.0) as u64)
        .start(incoming, feed.clone(), tasks);
        tasks.spawn(prune::run(
            store.clone(),
            tasks.clone(),
            config.server.retention.clone(),
        ));
        tasks.spawn(crate::stages::list::archive::run(
            store.clone(),
            lists.clone(),
            tasks.clone(),
        ));
        tasks.spawn(member_digests::run(
            store.clone(),
            lists.clone(),
            tasks.clone(),
        ));
        tasks.spawn(reports::daily(
            store.clone(),
            lists.clone(),
            config.server.hostname.clone(),
            tasks.clone(),
            report_dns,
        ));
        let web = start_web(config, &store, &lists, tasks).await?;
        let admin_socket = start_local_admin(config, &served, feed.clone(), tasks)?;
        let admin = start_admin(config, &served, (feed, &viewer_auth), tasks).await?;
        Ok(Server {
            admin_socket,
            socketmap,
            listeners,
            store,
            tasks: tasks.clone(),
            web,
            admin,
            served,
            admin_file: config
                .server
                .admin
                .is_some()
                .then(|| admin_addr_file(config)),
        })
    }

    /// Where the admin listener (metrics, API) listens, when configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// Where the Postfix socketmap listens, when configured.
    pub fn socketmap_addr(&self) -> Option<SocketAddr> {
        self.socketmap
    }

    /// Where the HTTP listener listens, when configured.
    pub fn web_addr(&self) -> Option<SocketAddr> {
        self.web
    }

    /// The store (for inspection while running).
    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    /// Re-reads the list and forwarding files and serves what they say from now on (see
    /// [`reload::Served::reload`]); on an error the configuration in force stays.
    pub async fn reload(&self) -> Result<String, ReloadError> {
        let served = self.served.clone();
        self.tasks
            .spawn_blocking(move || served.reload())
            .await
            .map_err(ReloadError::Task)?
    }

    /// Stops gracefully (see [`ListenerHandle::shutdown`]), then ends everything else. When
    /// this returns, every task has been dropped and the store file is closed, unless the
    /// caller still holds a handle from [`Server::store`].
    pub async fn stop(self, grace: Duration) {
        self.listeners.shutdown(grace).await;
        // A delivery in flight is cut off; its recipients stay pending and are tried again
        // on the next start (the receiving server may then see a duplicate, never a loss).
        self.tasks.stop().await;
        self.store.writes_done().await;
        if let Some(file) = &self.admin_file {
            let _ = std::fs::remove_file(file);
        }
        let _ = std::fs::remove_file(&self.admin_socket);
        drop(self.served);
        match Arc::try_unwrap(self.store) {
            // Dropping the last handle closes the file and joins the store's writer thread.
            Ok(store) => drop(store),
            Err(store) => tracing::error!(
                handles = Arc::strong_count(&store) - 1,
                "stopped, but the store is still held elsewhere and stays open"
            ),
        }
    }
}

/// Each list's runtime (key, footer, one-click), making keys where asked to.
fn load_lists(config: &Config) -> Result<Lists, StartError> {
    Ok(Lists::new(runtimes(config)?))
}

/// The runtimes of `config`'s lists: every key loads, or none is served.
fn runtimes(config: &Config) -> Result<Vec<ListRuntime>, StartError> {
    let mut lists = Vec::new();
    for list in &config.lists {
        keys::create_key_if_asked(&list.signing, list.signing_domain(), &list.address)?;
        let mut runtime = ListRuntime::load(list)?;
        if let Some(http) = &config.server.http {
            runtime = runtime.with_one_click(&http.base_url);
        }
        lists.push(runtime);
    }
    Ok(lists)
}

/// Whether this node does `job` for `period` now: on a shared store only the first node to ask
/// does. A store error is logged and counts as no (the next period asks again).
async fn ours(store: &Arc<Store>, tasks: &Tasks, job: &'static str, period: u64) -> bool {
    if tasks.is_stopping() {
        return false;
    }
    match store.once(job, period).await {
        Ok(ours) => ours,
        Err(e) => {
            tracing::error!(job, error = %e, "cannot tell whether this node does this job now; skipping it this time");
            false
        }
    }
}

/// Opens the store, seeds the lists it has not seen with the members their files name, and
/// reads (or makes) the token secret.
async fn open_store(config: &Config) -> Result<Arc<Store>, StartError> {
    let store = Arc::new(Store::open(&config.server).await?);
    store.open_connections().await;
    for list in &config.lists {
        crate::stages::list::seed::seed(&store, list, false).await?;
    }
    // Now, not at the first post after a start: made then, it waited for the commits of the
    // post's own queueing and archiving before the first copy could leave.
    store.token_secret().await?;
    Ok(store)
}

/// The forwarding domains, with the aliases of their files and of the store.
async fn load_forwarding(config: &Config, store: &Store) -> Result<Forwarding, StartError> {
    for f in &config.forwards {
        keys::ensure_forward_files(f)?;
    }
    let aliases = store.aliases().await?;
    Ok(Forwarding::load(&config.forwards, aliases)?)
}

/// The resolver of the server's DNS settings, and the authenticator that uses it.
fn authenticator(config: &Config) -> Result<(Resolver, Authenticator), StartError> {
    let live = LiveConfig {
        nameservers: config.server.dns.nameservers.clone(),
        timeout: Duration::from_secs(config.server.dns.timeout_secs.max(1)),
        negative_min: Duration::from_secs(config.server.dns.negative_min_secs),
        negative_max: Duration::from_secs(config.server.dns.negative_max_secs),
        ..LiveConfig::default()
    };
    // The engine counts its lookups, seals and overrides into the server's metrics.
    crate::base::metrics::install_auth_observer();
    let resolver = Resolver::Live(Box::new(LiveResolver::new(&live).map_err(StartError::Dns)?));
    let spf = SpfEvaluator::new(&live, &config.server.hostname).map_err(StartError::Dns)?;
    let auth = Authenticator::new(resolver.clone(), Some(spf))
        .with_silent_key_period(Duration::from_secs(config.server.dns.silent_key_secs));
    Ok((resolver, auth))
}

/// The delivery worker, with the server's routing and limits.
fn start_delivery(
    config: &Config,
    store: &Arc<Store>,
    resolver: Resolver,
    served: &reload::Served,
    tasks: &Tasks,
) -> Result<(), StartError> {
    let d = &config.server.delivery;
    // Delivery knows no policy: lists and forwarding domains answer for their own mail.
    let hooks = crate::stages::delivery::Hooks {
        list: Some(Arc::new(ListDelivery::new(
            served.lists.clone(),
            store.clone(),
        ))),
        forward: Some(Arc::new(ForwardDelivery::new(
            served.forwarding.clone(),
            store.clone(),
            &config.server.hostname,
        ))),
    };
    crate::stages::delivery::DeliveryWorker::new(
        store.clone(),
        resolver,
        crate::stages::delivery::route::Routing::from_config(d)?,
        &config.server.hostname,
        Duration::from_secs(d.timeout_secs.max(1)),
        hooks,
        crate::stages::delivery::Limits {
            max_connections: d.max_connections,
            per_destination: d.per_destination,
            recipients_per_transaction: d.recipients_per_transaction,
            per_round: d.recipients_per_round,
            reuse: Duration::from_secs(d.connection_reuse_secs),
            retry_after: d.retry_after_secs.clone(),
            lifetime: d.give_up_after_hours * 3600,
        },
    )
    .with_bind_addresses(crate::stages::delivery::BindAddresses {
        lists: (d.bind_address, d.bind_address6),
        forwarding: (
            d.forward_bind_address.or(d.bind_address),
            d.forward_bind_address6.or(d.bind_address6),
        ),
    })
    .start(tasks);
    Ok(())
}

/// The SMTP and LMTP listeners; each spooled message's id goes to `feed`.
async fn start_listeners(
    config: &Config,
    served: &reload::Served,
    auth: &Authenticator,
    feed: mpsc::UnboundedSender<SpoolId>,
    tasks: &Tasks,
) -> Result<ListenerHandle, StartError> {
    let tls = match &config.server.tls {
        Some(t) => Some(crate::stages::smtp::tls::acceptor(&t.cert, &t.key)?),
        None => None,
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let ctx = SessionContext {
        hostname: config.server.hostname.clone(),
        limits: config.server.limits.clone(),
        directory: served.directory.clone(),
        gate: Some(crate::stages::forward::gate::Gate::new(
            served.forwarding.clone(),
            auth.clone(),
        )),
        filter: crate::stages::filter::Filter::from_config(
            &config.server.filter,
            &config.server.hostname,
            auth.clone(),
        )?,
        store: served.store.clone(),
        tls,
        spooled: feed,
        shutdown: shutdown_rx,
        spill: crate::stages::smtp::body::Spill::new(
            spill_dir(config),
            config.server.limits.incoming_quota,
        ),
        trusted_relays: config.server.trusted_relays.clone(),
    };
    let server = &config.server;
    let binds: Vec<_> = (server.listen.iter().map(|a| (*a, Protocol::Smtp)))
        .chain(server.lmtp_listen.iter().map(|a| (*a, Protocol::Lmtp)))
        .collect();
    Listener::start(ctx, shutdown_tx, &binds, tasks)
        .await
        .map_err(StartError::Listen)
}

/// Where large messages wait while they arrive: in the node's state folder, emptied of what a crash
/// left (none of it was acknowledged).
fn spill_dir(config: &Config) -> std::path::PathBuf {
    let dir = config.server.state_dir.join("incoming");
    // The store file made its folder; beside a shared store nothing else does.
    if let Err(e) = crate::base::config::owner::create_dir(&dir, 0o750) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot create the folder for large messages");
    }
    crate::stages::smtp::body::Body::clean(&dir);
    dir
}

/// The one-click unsubscribe listener, when configured.
async fn start_web(
    config: &Config,
    store: &Arc<Store>,
    lists: &Lists,
    tasks: &Tasks,
) -> Result<Option<SocketAddr>, StartError> {
    let Some(http) = &config.server.http else {
        return Ok(None);
    };
    let limits = crate::surfaces::web::limits(&config.server.limits, &http.proxies);
    crate::surfaces::web::start(http.listen, store.clone(), lists.clone(), limits, tasks)
        .await
        .map(Some)
        .map_err(StartError::Listen)
}

/// The admin listener (metrics, API), when configured; its token file must hold 16
/// characters or more.
async fn start_admin(
    config: &Config,
    served: &Arc<reload::Served>,
    (feed, auth): (mpsc::UnboundedSender<SpoolId>, &Authenticator),
    tasks: &Tasks,
) -> Result<Option<SocketAddr>, StartError> {
    let Some(a) = &config.server.admin else {
        return Ok(None);
    };
    let viewer = a.chain_viewer.then(|| {
        Arc::new(crate::surfaces::web::chain_view::http::Viewer::new(
            auth.clone(),
            &a.viewer,
            &config.server.limits,
        ))
    });
    let console = match &a.console_users {
        Some(file) => Some(crate::surfaces::web::console::Console::load(
            file,
            (a.console_secure_cookie, login_policy(a)),
            auth.clone(),
        )?),
        None => None,
    };
    if let Some(console) = &console {
        let _ = served.console_users.set(console.users());
    }
    let token = crate::base::config::read_token(&a.token_file)?;
    let api = admin_api(served, feed, tasks);
    let limits = crate::surfaces::web::admin_limits(&config.server.limits, a);
    let hosts = crate::surfaces::web::hosts::Hosts::new(&a.hosts);
    let bound = crate::surfaces::web::admin::start(
        (a.listen, hosts),
        token,
        api,
        (viewer, console),
        limits,
        tasks,
    )
    .await
    .map_err(StartError::Listen)?;
    // The CLI finds the listener here: the file's address may be port 0 or a wildcard.
    let file = admin_addr_file(config);
    let _ = crate::base::config::owner::create_dir(&config.server.state_dir, 0o750);
    std::fs::write(&file, format!("{bound}\n"))
        .and_then(|()| crate::base::config::owner::adopt(&file))
        .map_err(|source| StartError::AddrFile { path: file, source })?;
    Ok(Some(bound))
}

/// The admin service as a running server offers it: approved posts go to the pipeline at
/// once, and reloads and alias changes reach what is served.
fn admin_api(
    served: &Arc<reload::Served>,
    feed: mpsc::UnboundedSender<SpoolId>,
    tasks: &Tasks,
) -> crate::surfaces::web::api::Api {
    let (reloader, refresher) = (served.clone(), served.clone());
    crate::surfaces::web::api::Api {
        store: served.store.clone(),
        lists: served.lists.clone(),
        config: served.config.clone(),
        feed: Some(feed),
        reload: Some(Arc::new(move || reloader.reload())),
        aliases_changed: Some(Arc::new(move || refresher.refresh_aliases())),
        tasks: tasks.clone(),
    }
}

/// The local admin socket, always on: the admin API for whoever the socket file's mode
/// (0660) and group let in, which the CLI on this host uses without a token. Returns its path.
fn start_local_admin(
    config: &Config,
    served: &Arc<reload::Served>,
    feed: mpsc::UnboundedSender<SpoolId>,
    tasks: &Tasks,
) -> Result<std::path::PathBuf, StartError> {
    let path = admin_socket(config);
    crate::base::config::owner::create_dir(&config.server.state_dir, 0o750).map_err(|e| {
        StartError::Listen(std::io::Error::new(
            e.kind(),
            format!(
                "cannot create the state folder {} for the local admin socket: {e}",
                config.server.state_dir.display()
            ),
        ))
    })?;
    let socket = crate::surfaces::web::serve::bind_unix(&path, ADMIN_SOCKET_MODE)
        .map_err(StartError::Listen)?;
    let limits = crate::surfaces::web::local_admin_limits(&config.server.limits);
    crate::surfaces::web::admin::start_local(socket, admin_api(served, feed, tasks), limits, tasks);
    tracing::info!(socket = %path.display(), "local admin socket listening");
    Ok(path)
}

/// The local admin socket's mode: the service user and its group may connect.
pub const ADMIN_SOCKET_MODE: u32 = 0o660;

/// Where a running server serves its local admin socket: `admin.sock` in its state folder.
pub fn admin_socket(config: &Config) -> std::path::PathBuf {
    config.server.state_dir.join("admin.sock")
}

/// When failed console logins must wait, from `[admin]`.
fn login_policy(
    a: &crate::base::config::AdminConfig,
) -> crate::surfaces::web::console::throttle::Policy {
    crate::surfaces::web::console::throttle::Policy {
        per_address: a.login_failures_per_address,
        per_name: a.login_failures_per_name,
        max_wait: std::time::Duration::from_secs(a.login_lockout_max_secs),
    }
}

/// Where a running server leaves its admin listener's bound address for the CLI: in its state
/// folder (beside the store file, which only one server can hold).
pub fn admin_addr_file(config: &Config) -> std::path::PathBuf {
    config.server.state_dir.join("admin-listener")
}
