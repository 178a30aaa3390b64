//! Assembles a running arclist from its configuration: keys, store, DNS, listeners, pipeline.

use crate::auth::Authenticator;
use crate::auth::dns::{LiveConfig, LiveResolver, Resolver};
use crate::auth::signing_key::SigningKey;
use crate::auth::spf::SpfEvaluator;
use crate::config::Config;
use crate::pipeline::Pipeline;
use crate::smtp::session::SessionContext;
use crate::smtp::{Directory, Listener, ListenerHandle, Protocol};
use crate::store::{Member, RedbStore, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// A running server.
pub struct Server {
    /// The listeners (addresses, shutdown).
    pub listeners: ListenerHandle,
    store: Arc<RedbStore>,
    pipeline: JoinHandle<()>,
    web: Option<crate::web::WebHandle>,
    admin: Option<crate::web::WebHandle>,
    delivery: JoinHandle<()>,
    reports: JoinHandle<()>,
}

impl Server {
    /// Starts everything `config` describes. Errors name the file or address at fault.
    pub async fn start(config: &Config) -> Result<Server, String> {
        let mut lists = std::collections::HashMap::new();
        for list in &config.lists {
            create_key_if_asked(&list.signing, list.signing_domain(), &list.address)?;
            let mut runtime = crate::list::ListRuntime::load(list)?;
            if let Some(http) = &config.server.http {
                runtime = runtime.with_one_click(&http.base_url);
            }
            lists.insert(list.address.clone(), Arc::new(runtime));
        }
        let lists: crate::pipeline::Lists = Arc::new(lists);
        let store = Arc::new(RedbStore::open(&config.server.store).map_err(|e| e.to_string())?);
        for list in &config.lists {
            let members: Vec<Member> = list
                .members
                .iter()
                .map(|entry| Member {
                    address: crate::config::member_address(entry),
                    name: crate::config::member_name(entry),
                    joined_at: crate::auth::unix_now(),
                    ..Default::default()
                })
                .collect();
            store
                .add_members(&list.address, &members)
                .map_err(|e| e.to_string())?;
        }
        for f in &config.forwards {
            ensure_forward_files(f)?;
        }
        let forwarding = Arc::new(crate::forward::Forwarding::load(
            &config.forwards,
            store.aliases().map_err(|e| e.to_string())?,
        )?);
        let live = LiveConfig {
            nameservers: config.server.dns.nameservers.clone(),
            timeout: Duration::from_secs(config.server.dns.timeout_secs.max(1)),
            ..LiveConfig::default()
        };
        let resolver = Resolver::Live(Box::new(LiveResolver::new(&live)?));
        let auth = Authenticator::new(
            resolver.clone(),
            Some(SpfEvaluator::new(&live, &config.server.hostname)?),
        );
        let d = &config.server.delivery;
        let delivery = crate::delivery::DeliveryWorker::new(
            store.clone(),
            resolver,
            crate::delivery::route::Routing::from_config(d)?,
            &config.server.hostname,
            Duration::from_secs(d.timeout_secs.max(1)),
            lists.clone(),
            crate::delivery::Limits {
                max_connections: d.max_connections,
                per_destination: d.per_destination,
                recipients_per_transaction: d.recipients_per_transaction,
                reuse: Duration::from_secs(d.connection_reuse_secs),
                retry_after: d.retry_after_secs.clone(),
                lifetime: d.give_up_after_hours * 3600,
            },
        )
        .start();
        let tls = match &config.server.tls {
            Some(t) => Some(crate::smtp::tls::acceptor(&t.cert, &t.key)?),
            None => None,
        };
        let (feed, incoming) = mpsc::unbounded_channel();
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let ctx = SessionContext {
            hostname: config.server.hostname.clone(),
            limits: config.server.limits.clone(),
            directory: Directory::new(&config.lists).with_forwarding(forwarding.clone()),
            gate: (!forwarding.is_empty()).then(|| crate::forward::gate::Gate {
                forwarding: forwarding.clone(),
                auth: auth.clone(),
            }),
            store: store.clone(),
            tls,
            spooled: feed.clone(),
            shutdown: shutdown_rx,
        };
        let mut binds: Vec<_> = config
            .server
            .listen
            .iter()
            .map(|a| (*a, Protocol::Smtp))
            .collect();
        binds.extend(
            config
                .server
                .lmtp_listen
                .iter()
                .map(|a| (*a, Protocol::Lmtp)),
        );
        let listeners = Listener::start(ctx, shutdown_tx, &binds)
            .await
            .map_err(|e| e.to_string())?;
        let reports = tokio::spawn(daily_reports(
            store.clone(),
            lists.clone(),
            config.server.hostname.clone(),
        ));
        let directory = Directory::new(&config.lists).with_forwarding(forwarding.clone());
        let pipeline = Pipeline::new(
            store.clone(),
            auth,
            &config.server.hostname,
            directory,
            lists,
        )
        .with_forwarding(forwarding)
        .start(incoming, feed);
        let web = match &config.server.http {
            Some(http) => {
                let lists = config.lists.iter().map(|l| l.address.clone()).collect();
                Some(
                    crate::web::start(http.listen, store.clone(), lists)
                        .await
                        .map_err(|e| e.to_string())?,
                )
            }
            None => None,
        };
        let admin = match &config.server.admin {
            Some(a) => {
                let token = std::fs::read_to_string(&a.token_file)
                    .map_err(|e| format!("admin token file {}: {e}", a.token_file.display()))?
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                if token.len() < 16 {
                    return Err(format!(
                        "admin token file {}: the token must be at least 16 characters",
                        a.token_file.display()
                    ));
                }
                Some(
                    crate::web::admin::start(a.listen, token)
                        .await
                        .map_err(|e| e.to_string())?,
                )
            }
            None => None,
        };
        Ok(Server {
            listeners,
            store,
            pipeline,
            web,
            admin,
            delivery,
            reports,
        })
    }

    /// Where the admin listener (metrics) listens, when configured.
    pub fn admin_addr(&self) -> Option<std::net::SocketAddr> {
        self.admin.as_ref().map(|w| w.addr)
    }

    /// Where the HTTP listener listens, when configured.
    pub fn web_addr(&self) -> Option<std::net::SocketAddr> {
        self.web.as_ref().map(|w| w.addr)
    }

    /// The store (for inspection while running).
    pub fn store(&self) -> Arc<RedbStore> {
        self.store.clone()
    }

    /// Stops gracefully (see [`ListenerHandle::shutdown`]).
    pub async fn stop(self, grace: Duration) {
        self.listeners.shutdown(grace).await;
        if let Some(web) = self.web {
            web.stop().await;
        }
        if let Some(admin) = self.admin {
            admin.stop().await;
        }
        self.pipeline.abort();
        // Wait for the worker to let go of the store, so it is closed when stop returns.
        let _ = self.pipeline.await;
        // A delivery in flight is cut off; its recipients stay pending and are tried again
        // on the next start (the receiving server may then see a duplicate, never a loss).
        self.delivery.abort();
        let _ = self.delivery.await;
        self.reports.abort();
        let _ = self.reports.await;
    }
}

/// Sends the owners' daily reports at each 00:00 UTC, for lists with `daily_report = true`.
async fn daily_reports(store: Arc<RedbStore>, lists: crate::pipeline::Lists, hostname: String) {
    loop {
        let now = crate::auth::unix_now();
        let next = (now / 86_400 + 1) * 86_400;
        tokio::time::sleep(Duration::from_secs(next - now)).await;
        match crate::operate::report::mail_to_owners(&*store, &lists, &hostname, next).await {
            Ok(n) if n > 0 => tracing::info!(reports = n, "daily reports queued for list owners"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot make the daily reports"),
        }
    }
}

/// Makes a forwarding domain's key and SRS secret when asked to and missing (mode 0600).
fn ensure_forward_files(f: &crate::config::ForwardConfig) -> Result<(), String> {
    create_key_if_asked(&f.signing, f.signing_domain(), &f.domain)?;
    if !f.srs.secret_file.exists() && f.srs.create_secret {
        let mut raw = [0u8; 24];
        aws_lc_rs::rand::fill(&mut raw)
            .map_err(|_| "no randomness for the SRS secret".to_string())?;
        use base64::Engine;
        let secret = base64::engine::general_purpose::STANDARD.encode(raw) + "\n";
        crate::cli::write_private(&f.srs.secret_file, &secret)?;
        tracing::warn!(domain = %f.domain, file = %f.srs.secret_file.display(), "created an SRS secret");
    }
    Ok(())
}

/// Makes the signing key of `owner` (a list or forwarding domain) when its file is missing
/// and `create_key` asks for it (mode 0600), and logs the record to publish. Loading it, and
/// saying what is wrong with it, is left to the list or forwarding runtime.
fn create_key_if_asked(
    signing: &crate::config::SigningConfig,
    signing_domain: &str,
    owner: &str,
) -> Result<(), String> {
    if signing.key.exists() || !signing.create_key {
        return Ok(());
    }
    let (key, pem) = SigningKey::generate_rsa2048().map_err(|e| e.to_string())?;
    crate::cli::write_private(&signing.key, &pem)?;
    tracing::warn!(
        owner,
        key = %signing.key.display(),
        "created a signing key; publish {}._domainkey.{} IN TXT \"{}\"",
        signing.selector,
        signing_domain,
        key.dns_record()?
    );
    Ok(())
}
