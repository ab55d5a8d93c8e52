//! Certificates made during a test (signed by the development CA) and Kubernetes-style
//! Secret mounts whose `..data` symlink can be swapped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Issues a new server certificate for localhost into `folder`; returns (chain, key) paths.
pub fn issue_server_certificate(folder: &Path, name: &str) -> (PathBuf, PathBuf) {
    let ca = super::repo_root().join("certs.example");
    let key = folder.join(format!("{name}.key"));
    let csr = folder.join(format!("{name}.csr"));
    let cert = folder.join(format!("{name}.crt"));
    let ext = folder.join(format!("{name}.ext"));
    std::fs::write(&ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n").expect("ext");
    let run = |args: &[&str]| {
        let output = Command::new("openssl").args(args).output().expect("openssl");
        assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    let path = |path: &Path| path.display().to_string();
    run(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &path(&key)]);
    run(&["req", "-new", "-key", &path(&key), "-subj", "/CN=localhost", "-out", &path(&csr)]);
    run(&[
        "x509",
        "-req",
        "-in",
        &path(&csr),
        "-CA",
        &path(&ca.join("ca.crt")),
        "-CAkey",
        &path(&ca.join("ca.key")),
        "-set_serial",
        &format!("{}", rand_serial()),
        "-days",
        "2",
        "-sha256",
        "-extfile",
        &path(&ext),
        "-out",
        &path(&cert),
    ]);
    let chain = folder.join(format!("{name}-chain.crt"));
    let mut pem = std::fs::read(&cert).expect("cert");
    pem.extend(std::fs::read(ca.join("ca.crt")).expect("ca"));
    std::fs::write(&chain, pem).expect("chain");
    (chain, key)
}

fn rand_serial() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |elapsed| elapsed.as_nanos() as u64)
}

/// The DER of the first certificate in a PEM file.
pub fn leaf_der(chain: &Path) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_file_iter(chain)
        .expect("pem")
        .next()
        .expect("one cert")
        .expect("valid")
        .to_vec()
}

/// A folder laid out like a mounted Kubernetes Secret: `tls.crt` and `tls.key` are symlinks
/// through `..data`, which points at a timestamped folder.
pub struct SecretMount {
    pub folder: PathBuf,
    version: u32,
}

impl SecretMount {
    pub fn new(folder: &Path, chain: &Path, key: &Path) -> Self {
        let mut mount = Self { folder: folder.to_path_buf(), version: 0 };
        mount.publish(chain, key);
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(format!("..data/{name}"), folder.join(name)).expect("symlink");
        }
        mount
    }

    /// What the kubelet does on update: write a new folder, then atomically swap `..data`.
    pub fn publish(&mut self, chain: &Path, key: &Path) {
        self.version += 1;
        let version = format!("..2026_11_21_{}", self.version);
        let target = self.folder.join(&version);
        std::fs::create_dir_all(&target).expect("version folder");
        std::fs::copy(chain, target.join("tls.crt")).expect("cert");
        std::fs::copy(key, target.join("tls.key")).expect("key");
        let staging = self.folder.join("..data_tmp");
        let _ = std::fs::remove_file(&staging);
        std::os::unix::fs::symlink(&version, &staging).expect("staging symlink");
        std::fs::rename(&staging, self.folder.join("..data")).expect("swap ..data");
    }

    pub fn cert(&self) -> PathBuf {
        self.folder.join("tls.crt")
    }

    pub fn key(&self) -> PathBuf {
        self.folder.join("tls.key")
    }
}
