//! The files an operator deploys with agree with each other and with the service: the Kubernetes manifests
//! under `deploy/kubernetes/`, `docker-compose.yml` and the `Dockerfile` (ports, probe paths, secrets given
//! as files, non-root). The ConfigMap's `config.toml` with the Deployment's variables, and the compose
//! `serve` service's variables, are also handed to the real binary, which must start with them, without a
//! warning about an unknown key, and answer SCIM reads in front of the emulator.
//!
//! Where `docker compose` (or a standalone `docker-compose`) is installed, `config -q` must accept the
//! compose file; elsewhere that one check prints that it was skipped, and passes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jumpcloud_scim::emulator::{self, EmulatorConfig};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A YAML node as JSON, so that it can be walked with `Value::pointer`.
fn to_json(y: &yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(s) => Value::from(s.parse::<f64>().expect("a YAML float")),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Hash(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        Yaml::Boolean(b) => b.to_string(),
                        other => panic!("a YAML mapping key that is not a scalar: {other:?}"),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Yaml::Alias(_) | Yaml::BadValue => panic!("an unsupported YAML node: {y:?}"),
    }
}

/// Every non-empty document of a YAML file.
fn yaml_documents(path: &Path) -> Vec<Value> {
    let docs = yaml_rust2::YamlLoader::load_from_str(&read(path))
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
    docs.iter().map(to_json).filter(|d| !d.is_null()).collect()
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {v}"))
}

fn array_at<'a>(v: &'a Value, pointer: &str) -> &'a Vec<Value> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no list at {pointer} in {v}"))
}

/// The port of a `host:port` address.
fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{addr:?} has no port"))
}

// ---- Kubernetes ---------------------------------------------------------------------------------------------

/// The manifests under deploy/kubernetes/, by kind (each kind once).
struct Manifests {
    by_kind: BTreeMap<String, Value>,
}

impl Manifests {
    fn load() -> Manifests {
        let dir = root().join("deploy/kubernetes");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no manifest in {}", dir.display());
        let mut by_kind = BTreeMap::new();
        for file in files {
            for doc in yaml_documents(&file) {
                let what = file.display();
                assert!(
                    doc.get("apiVersion").and_then(Value::as_str).is_some(),
                    "{what}: a document without apiVersion"
                );
                let kind = str_at(&doc, "/kind").to_string();
                let name = str_at(&doc, "/metadata/name");
                assert!(!name.is_empty(), "{what}: a {kind} without a name");
                assert!(
                    by_kind.insert(kind.clone(), doc).is_none(),
                    "{what}: a second {kind}; the test expects one of each"
                );
            }
        }
        for kind in [
            "Deployment",
            "Service",
            "Secret",
            "ConfigMap",
            "PersistentVolumeClaim",
        ] {
            assert!(
                by_kind.contains_key(kind),
                "no {kind} in deploy/kubernetes/"
            );
        }
        Manifests { by_kind }
    }

    fn get(&self, kind: &str) -> &Value {
        &self.by_kind[kind]
    }

    fn pod(&self) -> &Value {
        self.get("Deployment")
            .pointer("/spec/template/spec")
            .expect("a pod template")
    }

    /// The one container of the pod.
    fn container(&self) -> &Value {
        let containers = array_at(self.pod(), "/containers");
        assert_eq!(containers.len(), 1, "one container in the pod");
        &containers[0]
    }

    fn container_port(&self) -> u16 {
        let ports = array_at(self.container(), "/ports");
        assert_eq!(ports.len(), 1, "the container declares one port");
        ports[0]["containerPort"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .expect("a numeric containerPort")
    }

    /// A port given by number or by the name of a container port.
    fn resolve_port(&self, port: &Value) -> u16 {
        if let Some(n) = port.as_u64() {
            return u16::try_from(n).expect("a port number");
        }
        let name = port.as_str().expect("a port number or name");
        array_at(self.container(), "/ports")
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["containerPort"].as_u64())
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_else(|| panic!("no container port named {name:?}"))
    }

    /// The ConfigMap's config.toml.
    fn config_toml(&self) -> String {
        str_at(self.get("ConfigMap"), "/data/config.toml").to_string()
    }

    fn config_table(&self) -> toml::Table {
        self.config_toml()
            .parse()
            .expect("the ConfigMap's config.toml is TOML")
    }

    fn volume(&self, name: &str) -> &Value {
        array_at(self.pod(), "/volumes")
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no pod volume {name:?}"))
    }

    /// Where the container mounts the pod volume of this kind (`secret`, `configMap`,
    /// `persistentVolumeClaim`), and that volume.
    fn mount_of(&self, source: &str) -> (String, &Value) {
        let volumes: Vec<&Value> = array_at(self.pod(), "/volumes")
            .iter()
            .filter(|v| v.get(source).is_some())
            .collect();
        assert_eq!(volumes.len(), 1, "one {source} volume in the pod");
        let name = str_at(volumes[0], "/name");
        let mount = array_at(self.container(), "/volumeMounts")
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("the {source} volume {name:?} is not mounted"));
        assert!(
            mount.get("subPath").is_none(),
            "the {source} volume is mounted whole (a subPath mount never sees a rotated value)"
        );
        (str_at(mount, "/mountPath").to_string(), self.volume(name))
    }

    /// The container's environment, name → value (`valueFrom` entries are refused).
    fn env(&self) -> Vec<(String, String)> {
        self.container()
            .get("env")
            .and_then(Value::as_array)
            .map(|env| {
                env.iter()
                    .map(|e| {
                        let name = str_at(e, "/name").to_string();
                        assert!(
                            e.get("valueFrom").is_none(),
                            "{name}: secrets reach the service as files, not as variables"
                        );
                        (name, str_at(e, "/value").to_string())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The Secret template's values, key → value (`stringData`, or base64 `data` left as it is).
    fn secret_values(&self) -> BTreeMap<String, String> {
        let secret = self.get("Secret");
        let mut values = BTreeMap::new();
        for field in ["stringData", "data"] {
            if let Some(map) = secret.get(field).and_then(Value::as_object) {
                for (k, v) in map {
                    values.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
                }
            }
        }
        values
    }
}

#[test]
fn kubernetes_probes_ports_and_listen_agree() {
    let m = Manifests::load();
    let port = m.container_port();
    assert_eq!(port, 8080, "the container port");
    let probe = |name: &str| {
        m.container()
            .get(name)
            .unwrap_or_else(|| panic!("no {name}"))
            .get("httpGet")
            .unwrap_or_else(|| panic!("{name} is not an HTTP GET"))
    };
    for (name, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        let get = probe(name);
        assert_eq!(str_at(get, "/path"), path, "{name}'s path");
        assert_eq!(m.resolve_port(&get["port"]), port, "{name}'s port");
    }
    if m.container().get("startupProbe").is_some() {
        let get = probe("startupProbe");
        assert_eq!(str_at(get, "/path"), "/healthz", "startupProbe's path");
        assert_eq!(m.resolve_port(&get["port"]), port, "startupProbe's port");
    }

    let service = m.get("Service");
    let ports = array_at(service, "/spec/ports");
    assert_eq!(ports.len(), 1, "the Service has one port");
    assert_eq!(m.resolve_port(&ports[0]["targetPort"]), port, "targetPort");
    assert_eq!(ports[0]["port"], 80, "the Service's own port");
    let selector = service
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .expect("a Service selector");
    let labels = m
        .get("Deployment")
        .pointer("/spec/template/metadata/labels")
        .expect("pod labels");
    for (k, v) in selector {
        assert_eq!(&labels[k], v, "the Service selects the pod by {k}");
    }
    assert_eq!(
        m.get("Deployment").pointer("/spec/selector/matchLabels"),
        Some(&Value::Object(selector.clone())),
        "the Deployment and the Service select the same pods"
    );

    let config = m.config_table();
    let listen = config["listen"].as_str().expect("listen in config.toml");
    assert!(
        listen.starts_with("0.0.0.0:"),
        "listen {listen} must reach the pod's interfaces"
    );
    assert_eq!(port_of(listen), port, "listen in config.toml");
    let public = config["public_url"]
        .as_str()
        .expect("public_url in config.toml");
    assert!(
        public.starts_with("https://"),
        "public_url {public} is the ingress's https URL"
    );
    assert_eq!(
        port,
        dockerfile().exposed_port(),
        "the Dockerfile's EXPOSE and the container port"
    );

    // The probes and the service's listen also agree with how the pod is started.
    let args: Vec<&str> = array_at(m.container(), "/args")
        .iter()
        .map(|a| a.as_str().expect("string args"))
        .collect();
    assert_eq!(args.first(), Some(&"serve"), "the container runs serve");
    let config_arg = args
        .iter()
        .position(|a| *a == "--config")
        .map(|i| args[i + 1])
        .expect("serve --config FILE");
    let (config_dir, config_volume) = m.mount_of("configMap");
    assert_eq!(
        str_at(config_volume, "/configMap/name"),
        str_at(m.get("ConfigMap"), "/metadata/name"),
        "the mounted ConfigMap"
    );
    assert_eq!(
        config_arg,
        format!("{config_dir}/config.toml"),
        "--config names the mounted config.toml"
    );
}

#[test]
fn kubernetes_pod_runs_as_non_root_with_a_read_only_root() {
    let m = Manifests::load();
    let pod = m.pod().get("securityContext").cloned().unwrap_or_default();
    let container = m
        .container()
        .get("securityContext")
        .cloned()
        .expect("a container securityContext");
    // A container's own setting wins over the pod's.
    let setting = |key: &str| container.get(key).or_else(|| pod.get(key)).cloned();
    assert_eq!(setting("runAsNonRoot"), Some(Value::Bool(true)));
    let uid = setting("runAsUser").and_then(|u| u.as_u64());
    assert_eq!(uid, Some(65532), "runAsUser");
    assert_eq!(
        uid,
        Some(u64::from(dockerfile().user())),
        "the image's USER and the pod's runAsUser"
    );
    assert_eq!(container["readOnlyRootFilesystem"], true);
    assert_eq!(container["allowPrivilegeEscalation"], false);
    assert_ne!(container.get("privileged"), Some(&Value::Bool(true)));
    let dropped: Vec<&str> = array_at(&container, "/capabilities/drop")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(dropped.contains(&"ALL"), "every capability dropped");
    assert!(
        container.pointer("/capabilities/add").is_none(),
        "no capability added"
    );
    assert_eq!(
        setting("seccompProfile").and_then(|s| s.get("type").cloned()),
        Some(Value::from("RuntimeDefault"))
    );
    assert_eq!(
        pod.get("fsGroup").and_then(Value::as_u64),
        uid,
        "fsGroup lets the service read its Secret files and write data_dir"
    );

    // Resources: requests and limits for both, a limit never below its request.
    for what in ["cpu", "memory"] {
        let request = quantity(str_or_number(
            m.container()
                .pointer(&format!("/resources/requests/{what}")),
        ));
        let limit = quantity(str_or_number(
            m.container().pointer(&format!("/resources/limits/{what}")),
        ));
        assert!(
            request > 0.0 && limit >= request,
            "{what}: {request} ≤ {limit}"
        );
    }

    // One writer of data_dir: one replica, and the old pod gone before the new one mounts the volume.
    let deployment = m.get("Deployment");
    assert_eq!(deployment.pointer("/spec/replicas"), Some(&Value::from(1)));
    assert_eq!(str_at(deployment, "/spec/strategy/type"), "Recreate");
    let (data_dir, data_volume) = m.mount_of("persistentVolumeClaim");
    assert_eq!(
        str_at(data_volume, "/persistentVolumeClaim/claimName"),
        str_at(m.get("PersistentVolumeClaim"), "/metadata/name"),
        "the mounted claim"
    );
    assert_eq!(
        m.config_table()["data_dir"].as_str(),
        Some(data_dir.as_str()),
        "data_dir in config.toml is the volume's mount path"
    );
    assert_eq!(
        data_dir,
        dockerfile().env("JCSCIM_DATA_DIR"),
        "the image's data_dir"
    );
}

fn str_or_number(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        other => panic!("a resource quantity, got {other:?}"),
    }
}

/// A Kubernetes quantity (`250m`, `1`, `512Mi`, `1Gi`) as a number.
fn quantity(q: String) -> f64 {
    let (number, scale) = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("m", 0.001),
    ]
    .iter()
    .find_map(|(suffix, scale)| q.strip_suffix(suffix).map(|n| (n.to_string(), *scale)))
    .unwrap_or((q.clone(), 1.0));
    number
        .parse::<f64>()
        .unwrap_or_else(|_| panic!("quantity {q:?}"))
        * scale
}

#[test]
fn kubernetes_secret_files_are_the_templates_keys() {
    let m = Manifests::load();
    let template = m.secret_values();
    for key in ["jumpcloud-api-key", "scim-tokens"] {
        let value = template
            .get(key)
            .unwrap_or_else(|| panic!("the Secret template has no {key}"));
        assert!(
            value.to_ascii_uppercase().contains("REPLACE"),
            "{key} in the template must be a visible placeholder, got {value:?}"
        );
    }
    let (mount, volume) = m.mount_of("secret");
    assert_eq!(
        str_at(volume, "/secret/secretName"),
        str_at(m.get("Secret"), "/metadata/name"),
        "the mounted Secret"
    );
    // The files the volume holds: its items, or every key of the Secret.
    let files: Vec<String> = match volume.pointer("/secret/items").and_then(Value::as_array) {
        Some(items) => items
            .iter()
            .map(|item| {
                let key = str_at(item, "/key");
                assert!(
                    template.contains_key(key),
                    "the Deployment mounts Secret key {key}, which the template lacks"
                );
                str_at(item, "/path").to_string()
            })
            .collect(),
        None => template.keys().cloned().collect(),
    };
    let env = m.env();
    let file_vars: Vec<&(String, String)> =
        env.iter().filter(|(k, _)| k.ends_with("_FILE")).collect();
    for wanted in ["JCSCIM_JUMPCLOUD__API_KEY_FILE", "JCSCIM_AUTH__TOKENS_FILE"] {
        assert!(
            file_vars.iter().any(|(k, _)| k == wanted),
            "the Deployment sets {wanted}"
        );
    }
    for (name, path) in file_vars {
        let file = path
            .strip_prefix(&format!("{mount}/"))
            .unwrap_or_else(|| panic!("{name}={path} is not under the Secret's mount {mount}"));
        assert!(
            files.iter().any(|f| f == file),
            "{name}={path}: the Secret volume holds no {file} (it holds {files:?})"
        );
    }
    for (name, _) in &env {
        assert!(
            !matches!(
                name.as_str(),
                "JCSCIM_JUMPCLOUD__API_KEY" | "JCSCIM_AUTH__TOKENS" | "JCSCIM_AUTH__JWT__SECRET"
            ),
            "{name}: a secret in a plain variable"
        );
    }
}

/// The ConfigMap's config.toml, the Deployment's variables and the Secret template's values, given to the
/// real binary (files moved to a scratch directory; `listen` and `data_dir` there too).
#[tokio::test]
async fn kubernetes_config_starts_the_service() {
    let m = Manifests::load();
    let scratch = Scratch::new("k8s");
    let template = m.secret_values();
    let (mount, _) = m.mount_of("secret");
    let secrets = scratch.dir.join("secrets");
    std::fs::create_dir_all(&secrets).expect("secret dir");
    for (key, value) in &template {
        std::fs::write(secrets.join(key), format!("{value}\n")).expect("secret file");
    }
    let config = scratch.dir.join("config.toml");
    std::fs::write(&config, m.config_toml()).expect("config file");
    let env: Vec<(String, String)> = m
        .env()
        .into_iter()
        .map(|(k, v)| match v.strip_prefix(&format!("{mount}/")) {
            Some(file) => (k, secrets.join(file).display().to_string()),
            None => (k, v),
        })
        .collect();
    let token = first_token(&template["scim-tokens"]);
    let public_url = m.config_table()["public_url"].as_str().unwrap().to_string();
    let run = Service::start(&scratch, &template["jumpcloud-api-key"], Some(&config), env).await;
    run.warned_of_nothing_unknown();
    run.reads_users(&token, &public_url).await;
}

fn first_token(tokens: &str) -> String {
    let first = tokens.split(',').next().expect("a token").trim();
    first
        .strip_suffix(":read")
        .unwrap_or(first)
        .trim()
        .to_string()
}

// ---- Dockerfile ---------------------------------------------------------------------------------------------

/// The Dockerfile's instructions (continuations joined, comments dropped), keyword upper-cased.
struct Dockerfile {
    instructions: Vec<(String, String)>,
}

fn dockerfile() -> Dockerfile {
    let text = read(&root().join("Dockerfile"));
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (keyword, rest) = current
                    .split_once(char::is_whitespace)
                    .unwrap_or((&current, ""));
                instructions.push((keyword.to_ascii_uppercase(), rest.trim().to_string()));
                current.clear();
            }
        }
    }
    assert!(
        current.is_empty(),
        "the Dockerfile ends inside a continuation"
    );
    Dockerfile { instructions }
}

impl Dockerfile {
    /// The final stage: the instructions after the last FROM.
    fn runtime(&self) -> &[(String, String)] {
        let last = self
            .instructions
            .iter()
            .rposition(|(k, _)| k == "FROM")
            .expect("a FROM");
        &self.instructions[last..]
    }

    fn stages(&self) -> Vec<&str> {
        self.instructions
            .iter()
            .filter(|(k, _)| k == "FROM")
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The runtime stage's one value of an instruction.
    fn one(&self, keyword: &str) -> &str {
        let found: Vec<&str> = self
            .runtime()
            .iter()
            .filter(|(k, _)| k == keyword)
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(found.len(), 1, "one {keyword} in the runtime stage");
        found[0]
    }

    fn exposed_port(&self) -> u16 {
        let expose = self.one("EXPOSE");
        expose
            .trim_end_matches("/tcp")
            .parse()
            .unwrap_or_else(|_| panic!("EXPOSE {expose}"))
    }

    fn user(&self) -> u32 {
        let user = self.one("USER");
        let uid = user.split(':').next().unwrap_or_default();
        uid.parse()
            .unwrap_or_else(|_| panic!("USER {user} must be numeric (runAsNonRoot checks it)"))
    }

    /// A variable the runtime stage's ENV sets (`KEY=VALUE` form).
    fn env(&self, key: &str) -> String {
        self.runtime()
            .iter()
            .filter(|(k, _)| k == "ENV")
            .flat_map(|(_, v)| v.split_whitespace())
            .find_map(|pair| pair.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("the runtime stage's ENV sets no {key}"))
            .to_string()
    }
}

fn json_words(what: &str, text: &str) -> Vec<String> {
    serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("{what} {text} is not in exec (JSON) form: {e}"))
}

#[test]
fn dockerfile_is_multi_stage_non_root_and_checks_its_own_health() {
    let d = dockerfile();
    let stages = d.stages();
    assert!(stages.len() >= 2, "a build stage and a runtime stage");
    assert!(
        stages[0].starts_with("rust:"),
        "the build stage is on the official Rust image: {}",
        stages[0]
    );
    let runtime_image = stages.last().unwrap();
    assert!(
        !runtime_image.starts_with("rust:"),
        "the runtime stage is not the toolchain image"
    );
    let build = d
        .instructions
        .iter()
        .find(|(k, v)| k == "RUN" && v.contains("cargo build"))
        .map(|(_, v)| v.as_str())
        .expect("a cargo build");
    assert!(
        build.contains("--release") && build.contains("--locked"),
        "{build}"
    );

    assert_eq!(d.exposed_port(), 8080);
    assert_ne!(d.user(), 0, "the runtime stage runs as a non-root user");
    assert_eq!(
        port_of(&d.env("JCSCIM_LISTEN")),
        d.exposed_port(),
        "JCSCIM_LISTEN and EXPOSE"
    );
    assert!(d.env("JCSCIM_LISTEN").starts_with("0.0.0.0:"));
    let volumes = json_words("VOLUME", d.one("VOLUME"));
    assert_eq!(
        volumes,
        vec![d.env("JCSCIM_DATA_DIR")],
        "VOLUME is data_dir"
    );

    let health = d.one("HEALTHCHECK");
    let cmd = health
        .split_once("CMD ")
        .map(|(_, c)| c.trim())
        .unwrap_or_else(|| panic!("HEALTHCHECK {health} runs no CMD"));
    let cmd = json_words("HEALTHCHECK CMD", cmd);
    assert_eq!(cmd.len(), 2, "{cmd:?}");
    assert!(
        cmd[0] == "jumpcloud-scim" || cmd[0].ends_with("/jumpcloud-scim"),
        "{cmd:?}"
    );
    assert_eq!(cmd[1], "healthcheck");
    let entry = json_words("ENTRYPOINT", d.one("ENTRYPOINT"));
    assert!(
        entry.len() == 1 && entry[0].ends_with("jumpcloud-scim"),
        "{entry:?}"
    );
    assert_eq!(json_words("CMD", d.one("CMD")), vec!["serve"]);

    let ignored = read(&root().join(".dockerignore"));
    for path in ["target", ".git"] {
        assert!(
            ignored
                .lines()
                .any(|l| l.trim().trim_end_matches('/') == path),
            ".dockerignore leaves out {path}"
        );
    }
}

// ---- docker-compose.yml -------------------------------------------------------------------------------------

fn compose() -> Value {
    let mut docs = yaml_documents(&root().join("docker-compose.yml"));
    assert_eq!(docs.len(), 1, "docker-compose.yml is one document");
    docs.remove(0)
}

/// Compose's `${VAR:-default}` with VAR unset: the default (`$$` is a dollar).
fn interpolate(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(after) = after.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end = inner.find('}').expect("a closing brace");
            let default = inner[..end]
                .split_once(":-")
                .map(|(_, d)| d)
                .unwrap_or_else(|| panic!("${{{}}} has no default", &inner[..end]));
            out.push_str(default);
            rest = &inner[end + 1..];
        } else {
            panic!("a bare $ in {text:?}");
        }
    }
    out.push_str(rest);
    out
}

/// A service's environment (map or list form), interpolated.
fn compose_env(service: &Value) -> BTreeMap<String, String> {
    match service.get("environment") {
        None => BTreeMap::new(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), interpolate(&v))
            })
            .collect(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|e| {
                let (k, v) = e
                    .as_str()
                    .and_then(|e| e.split_once('='))
                    .expect("KEY=VALUE");
                (k.to_string(), interpolate(v))
            })
            .collect(),
        Some(other) => panic!("environment: {other}"),
    }
}

/// A service's published ports as (host address, host port, container port).
fn compose_ports(service: &Value) -> Vec<(String, u16, u16)> {
    service
        .get("ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .map(|p| match p {
                    Value::String(s) => {
                        let s = interpolate(s);
                        let parts: Vec<&str> = s.trim_end_matches("/tcp").split(':').collect();
                        assert_eq!(
                            parts.len(),
                            3,
                            "{s}: publish as HOST_IP:HOST_PORT:CONTAINER_PORT"
                        );
                        (
                            parts[0].to_string(),
                            parts[1].parse().expect("host port"),
                            parts[2].parse().expect("container port"),
                        )
                    }
                    long => (
                        str_at(long, "/host_ip").to_string(),
                        str_or_number(long.get("published"))
                            .parse()
                            .expect("published"),
                        long["target"].as_u64().expect("target") as u16,
                    ),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn words(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| interpolate(i.as_str().expect("a string")))
            .collect(),
        Some(Value::String(s)) => interpolate(s)
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
        Some(other) => panic!("a command: {other}"),
    }
}

fn hardened(name: &str, service: &Value) {
    assert_eq!(
        service.get("read_only"),
        Some(&Value::Bool(true)),
        "{name}: a read-only root filesystem"
    );
    let opts: Vec<&str> = service
        .get("security_opt")
        .and_then(Value::as_array)
        .map(|o| o.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        opts.contains(&"no-new-privileges:true") || opts.contains(&"no-new-privileges"),
        "{name}: no-new-privileges"
    );
    if let Some(user) = service.get("user").and_then(Value::as_str) {
        assert!(
            !user.starts_with('0') && !user.starts_with("root"),
            "{name}: user {user}"
        );
    }
    assert!(
        service.pointer("/healthcheck/disable") != Some(&Value::Bool(true)),
        "{name}: the image's HEALTHCHECK applies"
    );
}

#[test]
fn compose_demo_and_serve_agree_with_the_image() {
    let c = compose();
    let image_port = dockerfile().exposed_port();

    let demo = c.pointer("/services/demo").expect("a demo service");
    assert!(
        demo.get("profiles").is_none(),
        "demo runs on a plain `docker compose up`"
    );
    assert!(
        demo.get("build").is_some(),
        "demo is built from the Dockerfile"
    );
    let command = words(demo.get("command"));
    assert_eq!(command.first().map(String::as_str), Some("demo"));
    let listen = command
        .iter()
        .position(|w| w == "--listen")
        .map(|i| command[i + 1].clone())
        .expect("demo --listen");
    assert_eq!(
        listen, "0.0.0.0:8080",
        "demo listens on every interface inside"
    );
    assert_eq!(
        compose_ports(demo),
        vec![("127.0.0.1".to_string(), 8080, image_port)],
        "demo is published on 127.0.0.1:8080 only"
    );
    assert_eq!(port_of(&listen), image_port);
    hardened("demo", demo);

    let serve = c.pointer("/services/serve").expect("a serve service");
    let profiles = words(serve.get("profiles"));
    assert_eq!(profiles, vec!["serve"], "serve is the `serve` profile");
    let command = words(serve.get("command"));
    assert!(
        command.is_empty() || command == ["serve"],
        "serve runs serve: {command:?}"
    );
    hardened("serve", serve);
    let restart = serve.get("restart").and_then(Value::as_str);
    assert!(
        restart.is_some_and(|r| r != "no"),
        "serve has a restart policy"
    );
    let env = compose_env(serve);
    assert_eq!(
        port_of(&env["JCSCIM_LISTEN"]),
        image_port,
        "serve's JCSCIM_LISTEN"
    );
    let ports = compose_ports(serve);
    assert_eq!(ports.len(), 1, "serve publishes one port");
    let (host_ip, host_port, container_port) = ports[0].clone();
    assert_eq!(host_ip, "127.0.0.1");
    assert_eq!(container_port, image_port);
    assert_ne!(host_port, 8080, "serve and demo can run side by side");
    if let Some(public) = env.get("JCSCIM_PUBLIC_URL") {
        assert_eq!(
            port_of(public),
            host_port,
            "the default public_url is the published port"
        );
    }

    // Secrets as files under /run/secrets, each one the service lists and the file declares.
    let listed: Vec<String> = serve
        .get("secrets")
        .and_then(Value::as_array)
        .expect("serve lists its secrets")
        .iter()
        .map(|s| match s {
            Value::String(name) => name.clone(),
            long => long
                .get("target")
                .or_else(|| long.get("source"))
                .and_then(Value::as_str)
                .expect("a secret's source")
                .to_string(),
        })
        .collect();
    for wanted in ["JCSCIM_JUMPCLOUD__API_KEY_FILE", "JCSCIM_AUTH__TOKENS_FILE"] {
        assert!(env.contains_key(wanted), "serve sets {wanted}");
    }
    for (name, value) in env.iter().filter(|(k, _)| k.ends_with("_FILE")) {
        let secret = value
            .strip_prefix("/run/secrets/")
            .unwrap_or_else(|| panic!("{name}={value} is not under /run/secrets"));
        assert!(
            listed.iter().any(|s| s == secret),
            "{name}: serve lists no secret {secret}"
        );
        assert!(
            c.pointer(&format!("/secrets/{secret}/file")).is_some(),
            "{name}: the secret {secret} is declared with a file"
        );
    }
    for plain in ["JCSCIM_JUMPCLOUD__API_KEY", "JCSCIM_AUTH__TOKENS"] {
        assert!(
            !env.contains_key(plain),
            "{plain}: a secret in a plain variable"
        );
    }

    // data_dir on a named volume.
    let data_dir = &env["JCSCIM_DATA_DIR"];
    let mounted = serve
        .get("volumes")
        .and_then(Value::as_array)
        .expect("serve mounts a volume")
        .iter()
        .filter_map(Value::as_str)
        .find_map(|v| {
            let (source, target) = v.split_once(':')?;
            (target.trim_end_matches(":rw") == data_dir).then(|| source.to_string())
        })
        .unwrap_or_else(|| panic!("nothing is mounted at data_dir {data_dir}"));
    assert!(
        c.pointer(&format!("/volumes/{mounted}")).is_some(),
        "data_dir is on the named volume {mounted}"
    );
    assert_eq!(data_dir, &dockerfile().env("JCSCIM_DATA_DIR"));
}

/// The compose `serve` service's variables, given to the real binary (the secret files, `listen` and
/// `data_dir` moved to a scratch directory, JumpCloud replaced by the emulator).
#[tokio::test]
async fn compose_serve_environment_starts_the_service() {
    let c = compose();
    let env = compose_env(c.pointer("/services/serve").expect("a serve service"));
    let scratch = Scratch::new("compose");
    let api_key = "compose-test-api-key";
    let token = "compose-test-token-0123456789";
    let env: Vec<(String, String)> = env
        .into_iter()
        .map(|(k, v)| match v.strip_prefix("/run/secrets/") {
            Some(name) => {
                let file = scratch.dir.join(name);
                let value = if k == "JCSCIM_JUMPCLOUD__API_KEY_FILE" {
                    api_key
                } else {
                    token
                };
                std::fs::write(&file, value).expect("secret file");
                (k, file.display().to_string())
            }
            None => (k, v),
        })
        .collect();
    let public_url = env
        .iter()
        .find(|(k, _)| k == "JCSCIM_PUBLIC_URL")
        .map(|(_, v)| v.clone())
        .expect("serve sets JCSCIM_PUBLIC_URL");
    let run = Service::start(&scratch, api_key, None, env).await;
    run.warned_of_nothing_unknown();
    run.reads_users(token, &public_url).await;
}

#[test]
fn compose_config_is_valid_where_docker_is_installed() {
    let run = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .current_dir(root())
            .env("COMPOSE_PROFILES", "serve")
            .output()
    };
    // The compose plugin, or else a standalone docker-compose.
    let mut docker_found = false;
    let mut compose = None;
    for (program, prefix) in [("docker", &["compose"][..]), ("docker-compose", &[][..])] {
        match run(program, &[prefix, &["version"]].concat()) {
            Ok(out) if out.status.success() => {
                compose = Some((program, prefix));
                break;
            }
            Ok(_) => docker_found |= program == "docker",
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("{program} could not be run: {e}"),
        }
    }
    let Some((program, prefix)) = compose else {
        if docker_found {
            println!("skipped: docker is installed without the compose plugin");
        } else {
            println!("skipped: docker not installed");
        }
        return;
    };
    let args = [prefix, &["-f", "docker-compose.yml", "config", "-q"]].concat();
    let shown = format!("{program} {}", args.join(" "));
    let out = run(program, &args).expect("compose runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        println!("{shown}: docker-compose.yml is valid");
        return;
    }
    if stderr.contains("Cannot connect to the Docker daemon")
        || stderr.contains("error during connect")
    {
        println!("{shown}: no engine reachable, which this check does not need");
        return;
    }
    panic!("{shown} refused docker-compose.yml:\n{stderr}");
}

// ---- the real binary ----------------------------------------------------------------------------------------

/// A directory of its own under the system's temporary directory, removed when dropped.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("jcscim-deploy-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch { dir }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `jumpcloud-scim serve` started as a deployment would start it, in front of the emulator.
struct Service {
    _emulator: emulator::RunningEmulator,
    child: tokio::process::Child,
    base: String,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    http: reqwest::Client,
}

impl Service {
    /// Start the binary with this environment (nothing else inherited but PATH), `listen` on a free loopback
    /// port, `data_dir` in the scratch directory and JumpCloud replaced by an emulator accepting `api_key`;
    /// wait until it is ready.
    async fn start(
        scratch: &Scratch,
        api_key: &str,
        config: Option<&Path>,
        env: Vec<(String, String)>,
    ) -> Service {
        let emu = emulator::spawn(EmulatorConfig {
            api_key: api_key.to_string(),
            users: 5,
            groups: 2,
            ..EmulatorConfig::default()
        })
        .await
        .expect("the emulator starts");
        let data_dir = scratch.dir.join("data");
        std::fs::create_dir_all(&data_dir).expect("data dir");
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_jumpcloud-scim"));
        cmd.arg("serve");
        if let Some(config) = config {
            cmd.arg("--config").arg(config);
        }
        cmd.env_clear()
            .env("PATH", crate::support::machine::path())
            .envs(env)
            .env("JCSCIM_LISTEN", "127.0.0.1:0")
            .env("JCSCIM_DATA_DIR", &data_dir)
            .env("JCSCIM_JUMPCLOUD__URL", emu.base_url())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("jumpcloud-scim serve starts");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut err_lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let collected = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err_lines.next_line().await {
                let mut text = collected.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        let mut out_lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let listening = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = out_lines.next_line().await {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    return Some(addr.to_string());
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let Some(base) = listening else {
            let status = child.try_wait().ok().flatten();
            tokio::time::sleep(Duration::from_millis(200)).await;
            panic!(
                "serve did not start ({status:?}):\n{}",
                stderr.lock().unwrap()
            );
        };
        // Keep reading stdout (the audit trail) so that the service never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = out_lines.next_line().await {} });
        let service = Service {
            _emulator: emu,
            child,
            base,
            stderr,
            http: reqwest::Client::new(),
        };
        service.wait_ready().await;
        service
    }

    async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let status = self
                .http
                .get(format!("{}/readyz", self.base))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .ok();
            if status == Some(200) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not ready within 30 s ({status:?}):\n{}",
                self.stderr.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// /healthz answers, and a SCIM read with `token` answers users whose locations are under `public_url`.
    async fn reads_users(&self, token: &str, public_url: &str) {
        let health = self
            .http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .expect("/healthz answers");
        assert_eq!(health.status(), 200);
        let r = self
            .http
            .get(format!("{}/scim/v2/Users?count=1", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("a SCIM answer");
        assert_eq!(r.status(), 200, "the configured token reads users");
        let body: Value = r.json().await.expect("JSON");
        let location = str_at(&body, "/Resources/0/meta/location");
        assert!(
            location.starts_with(&format!(
                "{}/scim/v2/Users/",
                public_url.trim_end_matches('/')
            )),
            "meta.location {location} is under public_url {public_url}"
        );
        let refused = self
            .http
            .get(format!("{}/scim/v2/Users?count=1", self.base))
            .bearer_auth("not-a-configured-token")
            .send()
            .await
            .expect("an answer");
        assert_eq!(refused.status(), 401, "an unknown token is refused");
    }

    /// Start-up warned of no unknown key or variable (the warnings come before `listening on`).
    fn warned_of_nothing_unknown(&self) {
        let text = self.stderr.lock().unwrap().clone();
        let unknown: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("WARN") && l.to_ascii_lowercase().contains("unknown"))
            .collect();
        assert!(
            unknown.is_empty(),
            "the service warned about what it does not know:\n{}",
            unknown.join("\n")
        );
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The compose profile `replicas` starts HAProxy with `deploy/compose/haproxy.cfg`: HAProxy itself must accept
/// it (its checker resolves nothing it is told to resolve later, so the replicas' names need not exist here),
/// and it must send every replica a health check on `/readyz`.
#[test]
fn the_replicas_proxy_config_is_one_haproxy_accepts() {
    let path = root().join("deploy/compose/haproxy.cfg");
    let text = read(&path);
    assert!(
        text.contains("option httpchk GET /readyz"),
        "no readiness check"
    );
    let Some(haproxy) = crate::support::machine::on_path(&["haproxy"]) else {
        let how = "install it with: sudo apt-get install -y haproxy";
        assert!(
            !crate::support::machine::real_parts_required(),
            "haproxy is not installed, and JCSCIM_REQUIRE_REAL_PARTS=1: {how}"
        );
        eprintln!("\n*** SKIPPED the HAProxy config check: haproxy is not installed. {how} ***\n");
        return;
    };
    let out = std::process::Command::new(haproxy)
        .arg("-c")
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "haproxy refuses {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
