//! The web portals people use instead of the REST APIs: the Developer Portal
//! (`/devportal`), the Publisher (`/publisher`) and the Admin portal (`/admin`), served
//! by the control plane on the management listener.
//!
//! Pages are rendered on the server from templates (no node toolchain, no CDN) and every
//! action goes through the same REST APIs, with the signed-in user's own token, as the
//! CLI's: the same validation, the same role checks, the same field errors. Sign-in is
//! the key manager's login page (authorization code with PKCE, [`session`]); every form
//! carries a CSRF token ([`csrf`]).

pub mod admin;
pub mod admin_key_managers;
pub mod admin_policies;
pub mod charts;
pub mod cookies;
pub mod csrf;
pub mod dashboards;
pub mod devportal;
pub mod form;
pub mod page;
pub mod publisher;
pub mod publisher_documents;
pub mod rest;
pub mod session;
pub mod static_files;
pub mod tryout;

use axum::Router;
use axum::routing::get;
use std::sync::Arc;
use tollgate_http::auth::Authenticator;

pub use page::Pages;
pub use rest::Rest;

/// Which portals a node serves (each belongs to its component: `publisher`, `devportal`,
/// `admin`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortalSet {
    /// `/publisher`.
    pub publisher: bool,
    /// `/devportal`.
    pub devportal: bool,
    /// `/admin`.
    pub admin: bool,
}

/// What every portal handler shares.
#[derive(Clone)]
pub struct PortalsState {
    inner: Arc<Inner>,
}

struct Inner {
    rest: Rest,
    authenticator: Authenticator,
    pages: Pages,
    portals: PortalSet,
    secure_cookies: bool,
    refresh_lifetime: std::time::Duration,
    tryout: tryout::TryOutClient,
    endpoint_test_allow_private: bool,
}

/// Why the portals could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PortalsError {
    /// A template does not parse (a build defect, caught by the unit tests).
    #[error("a portal template is broken: {0}")]
    Template(#[from] minijinja::Error),
}

impl PortalsState {
    /// The portals over `rest` (the node's REST APIs, called in-process), checking
    /// sessions with `authenticator`. `secure_cookies` marks cookies `Secure` (set it
    /// when the management listener is reached over HTTPS); `refresh_lifetime` is how
    /// long the key manager's refresh tokens live (`key_manager.refresh_token_validity`),
    /// and so the refresh cookie; `endpoint_test_allow_private` lets "Test endpoint" reach
    /// private addresses (`[publisher] url_import_allow_private`).
    pub fn new(
        rest: axum::Router,
        authenticator: Authenticator,
        portals: PortalSet,
        secure_cookies: bool,
        refresh_lifetime: std::time::Duration,
        endpoint_test_allow_private: bool,
    ) -> Result<Self, PortalsError> {
        Ok(Self {
            inner: Arc::new(Inner {
                rest: Rest::new(rest),
                authenticator,
                pages: Pages::new()?,
                portals,
                secure_cookies,
                refresh_lifetime,
                tryout: tryout::TryOutClient::new(),
                endpoint_test_allow_private,
            }),
        })
    }

    /// The in-process REST client.
    pub fn rest(&self) -> &Rest {
        &self.inner.rest
    }

    /// The template renderer.
    pub fn pages(&self) -> &Pages {
        &self.inner.pages
    }

    /// The portals this node serves.
    pub fn portals(&self) -> PortalSet {
        self.inner.portals
    }

    /// Where a visitor lands when there is nowhere better to go (after signing in without
    /// a usable `next`, after signing out): the first portal this node serves.
    pub fn home(&self) -> &'static str {
        let p = self.inner.portals;
        if p.devportal || !(p.publisher || p.admin) {
            "/devportal"
        } else if p.publisher {
            "/publisher"
        } else {
            "/admin"
        }
    }

    /// How long a refresh token (and so the refresh cookie) lives.
    pub fn refresh_lifetime(&self) -> std::time::Duration {
        self.inner.refresh_lifetime
    }

    /// Whether cookies are marked `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.inner.secure_cookies
    }

    /// Checks session tokens.
    pub fn authenticator(&self) -> &Authenticator {
        &self.inner.authenticator
    }

    /// Whether the Publisher's "Test endpoint" may reach private addresses.
    pub fn endpoint_test_allow_private(&self) -> bool {
        self.inner.endpoint_test_allow_private
    }

    /// The HTTP client of the try-out console.
    pub fn tryout_client(&self) -> &tryout::TryOutClient {
        &self.inner.tryout
    }
}

/// The portals' routes: sign-in and static files always, each portal when its component
/// runs, all behind the CSRF check.
pub fn routes(state: PortalsState) -> Router {
    let portals = state.portals();
    let mut router = Router::new()
        .route("/portals/static/{file}", get(static_files::serve))
        .merge(session::routes());
    if portals.devportal {
        router = router.merge(devportal::routes());
    }
    if portals.publisher {
        router = router.merge(publisher::routes()).merge(publisher_documents::routes());
    }
    if portals.admin {
        router = router
            .merge(admin::routes())
            .merge(admin_policies::routes())
            .merge(admin_key_managers::routes());
    }
    router = router.merge(dashboards::routes(portals.publisher, portals.devportal, portals.admin));
    router
        .layer(axum::middleware::from_fn_with_state(state.clone(), session::renew))
        .layer(axum::middleware::from_fn_with_state(state.clone(), csrf::protect))
        .with_state(state)
}
