//! A real OpenLDAP server for tests: Debian's `slapd`, started in a temporary directory on
//! a free port with a seeded directory, and stopped by PID when dropped. Without `slapd`
//! and `ldap-utils` installed, LDAP tests are skipped with a printed reason, unless
//! `REQUIRE_LDAP=1` (set by CI), where that is a failure.
//!
//! The seed ([`SEED`]) is the directory every LDAP test starts from: people under
//! `ou=people`, groups (`groupOfNames`) under `ou=groups`, a disabled account.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The directory's suffix.
pub const BASE_DN: &str = "dc=example,dc=com";
/// Where people are.
pub const PEOPLE_DN: &str = "ou=people,dc=example,dc=com";
/// Where groups are.
pub const GROUPS_DN: &str = "ou=groups,dc=example,dc=com";
/// The service account Tollgate binds as (read access to people and groups).
pub const SERVICE_DN: &str = "cn=tollgate,dc=example,dc=com";
/// Its password.
pub const SERVICE_PASSWORD: &str = "service-password";
/// The directory manager (writes anything), for tests that change the directory.
pub const MANAGER_DN: &str = "cn=manager,dc=example,dc=com";
/// Its password.
pub const MANAGER_PASSWORD: &str = "manager-password";

/// The seeded directory: `alice` (in `apiPublishers` and `apiSubscribers`), `bob` (in
/// `apiSubscribers`), `carol` (locked: `pwdAccountLockedTime` set) and `dave` (in no
/// group); each person's password is `{uid}-password`. Each group also lists
/// `cn=nobody` (an entry that does not exist), since a `groupOfNames` must keep one
/// member when a test removes the others.
pub const SEED: &str = "\
dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: cn=tollgate,dc=example,dc=com
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: tollgate
userPassword: service-password

dn: cn=default-policy,dc=example,dc=com
objectClass: applicationProcess
objectClass: pwdPolicy
cn: default-policy
pwdAttribute: userPassword
pwdLockout: TRUE

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: uid=alice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: alice
cn: Alice Liddell
sn: Liddell
mail: alice@example.com
userPassword: alice-password

dn: uid=bob,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: bob
cn: Bob Builder
sn: Builder
mail: bob@example.com
userPassword: bob-password

dn: uid=carol,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: carol
cn: Carol Locked
sn: Locked
mail: carol@example.com
userPassword: carol-password
pwdAccountLockedTime: 000001010000Z

dn: uid=dave,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: dave
cn: Dave Nogroup
sn: Nogroup
userPassword: dave-password

dn: cn=apiPublishers,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: apiPublishers
member: cn=nobody,dc=example,dc=com
member: uid=alice,ou=people,dc=example,dc=com

dn: cn=apiSubscribers,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: apiSubscribers
member: cn=nobody,dc=example,dc=com
member: uid=alice,ou=people,dc=example,dc=com
member: uid=bob,ou=people,dc=example,dc=com
";

const SLAPD: &str = "/usr/sbin/slapd";
/// Debian's `ldap-utils` search tool.
const LDAPSEARCH: &str = "/usr/bin/ldapsearch";
const SLAPADD: &str = "/usr/sbin/slapadd";
const LDAPMODIFY: &str = "/usr/bin/ldapmodify";

fn required() -> bool {
    std::env::var("REQUIRE_LDAP").is_ok_and(|v| v == "1" || v == "true")
}

/// A running `slapd` with the [`SEED`] directory (and whatever a test added since).
pub struct Slapd {
    /// `ldap://127.0.0.1:{port}`.
    pub url: String,
    /// Its address.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Slapd {
    /// Starts a server seeded with [`SEED`], or `None` with the reason printed when
    /// `slapd` is not installed (a panic when `REQUIRE_LDAP` is set).
    pub fn start() -> Option<Slapd> {
        Self::start_with(SEED)
    }

    /// Starts a server seeded with `ldif`, whose suffix is [`BASE_DN`].
    pub fn start_with(ldif: &str) -> Option<Slapd> {
        if let Some(missing) = [SLAPD, SLAPADD, LDAPMODIFY, LDAPSEARCH]
            .into_iter()
            .find(|p| !Path::new(p).is_file())
        {
            let reason = format!("{missing} not found (apt-get install slapd ldap-utils)");
            if required() {
                panic!("REQUIRE_LDAP is set but {reason}");
            }
            eprintln!("[ldap] SKIPPED: {reason}");
            return None;
        }
        let dir = tempfile::tempdir().expect("a temporary directory for slapd");
        std::fs::create_dir(dir.path().join("db")).expect("slapd's database directory");
        std::fs::write(dir.path().join("slapd.conf"), config(dir.path())).expect("slapd.conf");
        let seed = dir.path().join("seed.ldif");
        std::fs::write(&seed, ldif).expect("seed.ldif");
        let out = Command::new(SLAPADD)
            .arg("-f")
            .arg(dir.path().join("slapd.conf"))
            .arg("-l")
            .arg(&seed)
            .output()
            .expect("slapadd runs");
        assert!(
            out.status.success(),
            "slapadd refused the seed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = crate::free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut slapd = Slapd {
            url: format!("ldap://127.0.0.1:{port}"),
            addr,
            dir,
            child: None,
        };
        slapd.resume();
        eprintln!("[ldap] slapd at {} (seeded)", slapd.url);
        Some(slapd)
    }

    /// Stops the server (as a directory that goes down does): connections are refused
    /// until [`Slapd::resume`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, with the same directory.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "slapd is already running");
        let log = std::fs::File::create(self.dir.path().join("slapd.log")).expect("slapd.log");
        // `-d 0`: in the foreground, so that the child is slapd itself.
        let child = Command::new(SLAPD)
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            .arg("-h")
            .arg(format!("{}/", self.url))
            .args(["-d", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("slapd starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "slapd did not listen on {} within 10 s: {}",
                self.url,
                std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Applies `ldif` (changetype records) as the directory manager, with `ldapmodify`.
    pub fn modify(&self, ldif: &str) {
        let mut child = Command::new(LDAPMODIFY)
            .args(["-x", "-H", &self.url, "-D", MANAGER_DN, "-w", MANAGER_PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldapmodify runs");
        child
            .stdin
            .take()
            .expect("ldapmodify's stdin")
            .write_all(ldif.as_bytes())
            .expect("ldif written");
        let out = child.wait_with_output().expect("ldapmodify ends");
        assert!(
            out.status.success(),
            "ldapmodify refused {ldif}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The entry `dn`'s `attribute` as the directory manager reads it, in LDIF (with
    /// `ldapsearch`): to see what the directory stored.
    pub fn search(&self, dn: &str, attribute: &str) -> String {
        let out = Command::new(LDAPSEARCH)
            .args(["-x", "-LLL", "-H", &self.url, "-D", MANAGER_DN, "-w", MANAGER_PASSWORD])
            .args(["-s", "base", "-b", dn, "(objectClass=*)", attribute])
            .output()
            .expect("ldapsearch runs");
        assert!(
            out.status.success(),
            "ldapsearch of {dn}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Removes `uid` from the group `cn`.
    pub fn remove_member(&self, group: &str, uid: &str) {
        self.modify(&format!(
            "dn: cn={group},{GROUPS_DN}\nchangetype: modify\ndelete: member\nmember: uid={uid},{PEOPLE_DN}\n"
        ));
    }

    /// Where the server keeps its files.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A minimal `slapd.conf`: the standard schemas, one MDB database under `dir`, the
/// manager as root DN, users reading everything but passwords, anonymous binds refused,
/// and the password-policy overlay, by which a locked account (`pwdAccountLockedTime`)
/// cannot bind.
fn config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
disallow bind_anon
require authc
database mdb
maxsize 10485760
suffix \"{BASE_DN}\"
rootdn \"{MANAGER_DN}\"
rootpw {MANAGER_PASSWORD}
directory {d}/db
limits * size.soft=500 size.hard=unlimited size.prtotal=unlimited
overlay ppolicy
ppolicy_default \"cn=default-policy,{BASE_DN}\"
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
"
    )
}
