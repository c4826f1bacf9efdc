//! The content-addressed store: its on-disk index, lookups, removal and image garbage
//! collection with upstream's high/low threshold semantics.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::ImageError;
use crate::{Image, ImageConfig, RegistryConfig, reference};

const INDEX_FILE: &str = "index.json";
const INDEX_VERSION: u32 = 1;

/// The image store. Cheap to clone; clones share everything. Open one per root directory.
#[derive(Clone)]
pub struct ImageStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) root: PathBuf,
    pub(crate) config: RegistryConfig,
    state: Mutex<State>,
    /// One async lock per blob / layer digest, so concurrent pulls download and unpack each
    /// only once.
    digest_locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    pub(crate) blobs_downloaded: AtomicU64,
    pub(crate) layers_unpacked: AtomicU64,
    tmp_counter: AtomicU64,
}

#[derive(Default)]
struct State {
    index: Index,
    /// Digests that pulls in progress rely on; removal and GC leave them alone.
    pinned: HashMap<String, usize>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    version: u32,
    images: BTreeMap<String, Record>,
}

/// One reference in the index.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) repo_digest: String,
    pub(crate) manifest_digest: String,
    pub(crate) id: String,
    pub(crate) config: ImageConfig,
    /// Layer blob digests, bottom first.
    pub(crate) layers: Vec<String>,
    pub(crate) size: u64,
    /// Seconds since the epoch.
    pub(crate) last_used: u64,
}

/// Counters of the work pulls did (to see cache hits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    pub blobs_downloaded: u64,
    pub layers_unpacked: u64,
}

/// What a garbage collection pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Disk usage of the store's filesystem before collecting, in percent.
    pub usage_percent: u64,
    /// Bytes upstream's algorithm wanted freed (0 when under the high threshold).
    pub wanted_bytes: u64,
    /// Image ids removed, least recently used first.
    pub removed: Vec<String>,
    /// Bytes removed from disk.
    pub freed_bytes: u64,
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

/// The hex part of a `sha256:<64 hex>` digest; anything else is refused (it becomes a path).
pub(crate) fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))).then_some(hex)
}

/// Releases pinned digests when a pull ends.
pub(crate) struct Pins {
    inner: Arc<Inner>,
    digests: Vec<String>,
}

impl Drop for Pins {
    fn drop(&mut self) {
        let mut state = self.inner.lock_state();
        for digest in &self.digests {
            if let Some(count) = state.pinned.get_mut(digest) {
                *count -= 1;
                if *count == 0 {
                    state.pinned.remove(digest);
                }
            }
        }
    }
}

impl Inner {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the index consistent (every change is applied
        // in one step), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn blob_path(&self, hex: &str) -> PathBuf {
        self.root.join("blobs/sha256").join(hex)
    }

    pub(crate) fn layer_path(&self, hex: &str) -> PathBuf {
        self.root.join("layers/sha256").join(hex)
    }

    /// A fresh path under `tmp/` (not created).
    pub(crate) fn tmp_path(&self, what: &str) -> PathBuf {
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        self.root.join("tmp").join(format!("{what}-{}-{n}", std::process::id()))
    }

    pub(crate) fn digest_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .digest_locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(lock) = locks.get(key).and_then(Weak::upgrade) {
            return lock;
        }
        locks.retain(|_, lock| lock.strong_count() > 0);
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(key.to_string(), Arc::downgrade(&lock));
        lock
    }

    fn image(&self, reference: &str, record: &Record) -> Image {
        Image {
            reference: reference.to_string(),
            repo_digest: record.repo_digest.clone(),
            id: record.id.clone(),
            config: record.config.clone(),
            layers: record
                .layers
                .iter()
                .filter_map(|digest| sha256_hex(digest))
                .map(|hex| self.layer_path(hex))
                .collect(),
            size: record.size,
        }
    }

    fn persist(&self, index: &Index) -> Result<(), ImageError> {
        let path = self.root.join(INDEX_FILE);
        let index_error = |message: String| ImageError::Index {
            path: path.clone(),
            message,
        };
        let bytes = serde_json::to_vec_pretty(index).map_err(|error| index_error(error.to_string()))?;
        let tmp = self.tmp_path("index");
        let write = || -> io::Result<()> {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|error| {
            let _ = fs::remove_file(&tmp);
            index_error(error.to_string())
        })
    }
}

impl ImageStore {
    /// Opens (creating if needed) the store at `root`, reads its index and clears leftovers of
    /// interrupted pulls from `tmp/`.
    pub fn open(root: &Path, config: RegistryConfig) -> Result<ImageStore, ImageError> {
        for dir in ["blobs/sha256", "layers/sha256"] {
            let path = root.join(dir);
            fs::create_dir_all(&path).map_err(|error| ImageError::io("creating", &path, error))?;
        }
        let tmp = root.join("tmp");
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|error| ImageError::io("clearing", &tmp, error))?;
        }
        fs::create_dir_all(&tmp).map_err(|error| ImageError::io("creating", &tmp, error))?;
        let root = root
            .canonicalize()
            .map_err(|error| ImageError::io("resolving", root, error))?;

        let index_path = root.join(INDEX_FILE);
        let index = match fs::read(&index_path) {
            Ok(bytes) => {
                let index: Index = serde_json::from_slice(&bytes).map_err(|error| ImageError::Index {
                    path: index_path.clone(),
                    message: error.to_string(),
                })?;
                if index.version != INDEX_VERSION {
                    return Err(ImageError::Index {
                        path: index_path,
                        message: format!("unsupported index version {}", index.version),
                    });
                }
                index
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => Index {
                version: INDEX_VERSION,
                images: BTreeMap::new(),
            },
            Err(error) => return Err(ImageError::io("reading", &index_path, error)),
        };
        Ok(ImageStore {
            inner: Arc::new(Inner {
                root,
                config,
                state: Mutex::new(State {
                    index,
                    pinned: HashMap::new(),
                }),
                digest_locks: Mutex::new(HashMap::new()),
                blobs_downloaded: AtomicU64::new(0),
                layers_unpacked: AtomicU64::new(0),
                tmp_counter: AtomicU64::new(0),
            }),
        })
    }

    /// The store's root directory (canonical).
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Downloads and unpacks done by this store so far.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            blobs_downloaded: self.inner.blobs_downloaded.load(Ordering::Relaxed),
            layers_unpacked: self.inner.layers_unpacked.load(Ordering::Relaxed),
        }
    }

    /// The image `reference` names if it is already in the store (for `IfNotPresent` and
    /// `Never`). Accepts anything [`ImageStore::pull`] accepts, a `repo@digest` of a pulled
    /// image, or an image id (`sha256:...`). Marks the image as used now.
    pub fn lookup(&self, reference: &str) -> Option<Image> {
        let mut state = self.inner.lock_state();
        let key = find_key(&state.index, reference)?;
        let record = state.index.images.get_mut(&key)?;
        record.last_used = record.last_used.max(now_secs());
        let record = record.clone();
        Some(self.inner.image(&key, &record))
    }

    /// Every reference in the store, sorted by reference.
    pub fn list(&self) -> Vec<Image> {
        let state = self.inner.lock_state();
        state
            .index
            .images
            .iter()
            .map(|(reference, record)| self.inner.image(reference, record))
            .collect()
    }

    /// Removes every reference to the image `image_id` and the blobs and layers no other image
    /// uses. The caller makes sure no container uses it. Returns the bytes freed.
    pub fn remove(&self, image_id: &str) -> Result<u64, ImageError> {
        let trash = {
            let mut state = self.inner.lock_state();
            let before = state.index.images.len();
            state.index.images.retain(|_, record| record.id != image_id);
            if state.index.images.len() == before {
                return Err(ImageError::NotFound(image_id.to_string()));
            }
            let trash = self.collect_unreferenced(&state)?;
            self.inner.persist(&state.index)?;
            trash
        };
        Ok(delete_trash(&trash))
    }

    /// Moves every blob and layer no image references (and no pull pins) into a trash
    /// directory under `tmp/`, and returns it. Called with the state locked, so pulls cannot
    /// start relying on something while it goes.
    fn collect_unreferenced(&self, state: &State) -> Result<PathBuf, ImageError> {
        let mut keep: HashSet<&str> = state.pinned.keys().map(String::as_str).collect();
        for record in state.index.images.values() {
            keep.insert(&record.id);
            keep.extend(record.layers.iter().map(String::as_str));
        }
        let trash = self.inner.tmp_path("trash");
        fs::create_dir_all(&trash).map_err(|error| ImageError::io("creating", &trash, error))?;
        for kind in ["blobs", "layers"] {
            let dir = self.inner.root.join(kind).join("sha256");
            let entries = fs::read_dir(&dir).map_err(|error| ImageError::io("listing", &dir, error))?;
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !keep.contains(format!("sha256:{name}").as_str()) {
                    let target = trash.join(format!("{kind}-{name}"));
                    fs::rename(entry.path(), &target)
                        .map_err(|error| ImageError::io("removing", entry.path(), error))?;
                }
            }
        }
        Ok(trash)
    }

    /// Image garbage collection as upstream's kubelet does it: when the disk usage of the
    /// store's filesystem is at or above `high_threshold_percent`, remove unused images (not in
    /// `in_use`, image ids), least recently used first, until usage would be down to
    /// `low_threshold_percent`. A high threshold of 100 disables collection. Images in use are
    /// marked as used now.
    pub fn garbage_collect(
        &self,
        in_use: &HashSet<String>,
        high_threshold_percent: u8,
        low_threshold_percent: u8,
    ) -> Result<GcReport, ImageError> {
        let stat = nix::sys::statvfs::statvfs(&self.inner.root)
            .map_err(|errno| ImageError::io("statfs", &self.inner.root, io::Error::from_raw_os_error(errno as i32)))?;
        let fragment = stat.fragment_size();
        let capacity = stat.blocks().saturating_mul(fragment);
        let available = stat.blocks_available().saturating_mul(fragment);
        let now = now_secs();
        let mut report = GcReport::default();
        let candidates = {
            let mut state = self.inner.lock_state();
            let mut last_used: BTreeMap<String, u64> = BTreeMap::new();
            for record in state.index.images.values_mut() {
                if in_use.contains(&record.id) {
                    record.last_used = now;
                } else {
                    let entry = last_used.entry(record.id.clone()).or_insert(0);
                    *entry = (*entry).max(record.last_used);
                }
            }
            let mut candidates: Vec<(u64, String)> = last_used.into_iter().map(|(id, used)| (used, id)).collect();
            candidates.sort();
            candidates
        };
        if capacity == 0 {
            return Ok(report);
        }
        report.usage_percent = 100 - available.saturating_mul(100) / capacity;
        if high_threshold_percent >= 100 || report.usage_percent < u64::from(high_threshold_percent) {
            return Ok(report);
        }
        report.wanted_bytes =
            (capacity.saturating_mul(100 - u64::from(low_threshold_percent.min(100))) / 100).saturating_sub(available);
        for (_, id) in candidates {
            if report.freed_bytes >= report.wanted_bytes {
                break;
            }
            report.freed_bytes += self.remove(&id)?;
            report.removed.push(id);
        }
        Ok(report)
    }

    /// Pins `digests` for the duration of a pull.
    pub(crate) fn pin(&self, digests: Vec<String>) -> Pins {
        let mut state = self.inner.lock_state();
        for digest in &digests {
            *state.pinned.entry(digest.clone()).or_insert(0) += 1;
        }
        Pins {
            inner: self.inner.clone(),
            digests,
        }
    }

    /// Records a pulled image under `reference` and persists the index.
    pub(crate) fn insert(&self, reference: &str, record: Record) -> Result<Image, ImageError> {
        let mut state = self.inner.lock_state();
        state.index.images.insert(reference.to_string(), record.clone());
        self.inner.persist(&state.index)?;
        Ok(self.inner.image(reference, &record))
    }

    /// For a reference by digest (`normalized`): the stored image with that digest, pulled
    /// under any name of the same repository, if all its layers are present. It is recorded
    /// under `normalized` too, so later lookups find it directly.
    pub(crate) fn present_by_digest(&self, normalized: &str) -> Option<Image> {
        let mut state = self.inner.lock_state();
        let key = find_key(&state.index, normalized)?;
        let mut record = state.index.images.get(&key)?.clone();
        let image = self.inner.image(normalized, &record);
        if !image.layers.iter().all(|layer| layer.is_dir()) {
            return None;
        }
        record.last_used = now_secs();
        state.index.images.insert(normalized.to_string(), record);
        if let Err(error) = self.inner.persist(&state.index) {
            tracing::warn!(%error, "recording an image pulled by digest");
        }
        Some(image)
    }
}

/// The index key `reference` names: itself normalised, a `repo@digest` of a pulled image
/// (index or platform manifest digest), or an image id.
fn find_key(index: &Index, reference: &str) -> Option<String> {
    if sha256_hex(reference).is_some() {
        return index
            .images
            .iter()
            .find(|(_, record)| record.id == reference)
            .map(|(key, _)| key.clone());
    }
    let parsed = reference::parse(reference).ok()?;
    let normalized = parsed.whole();
    if index.images.contains_key(&normalized) {
        return Some(normalized);
    }
    let digest = parsed.digest()?;
    let repo_digest = format!("{}/{}@{digest}", parsed.registry(), parsed.repository());
    index
        .images
        .iter()
        .find(|(key, record)| {
            (record.repo_digest == repo_digest || record.manifest_digest == digest)
                && reference::parse(key)
                    .is_ok_and(|r| r.registry() == parsed.registry() && r.repository() == parsed.repository())
        })
        .map(|(key, _)| key.clone())
}

/// Deletes a trash directory and returns the bytes it occupied.
fn delete_trash(trash: &Path) -> u64 {
    let freed = disk_usage(trash);
    if let Err(error) = fs::remove_dir_all(trash) {
        tracing::warn!(path = %trash.display(), %error, "removing deleted image content");
    }
    freed
}

/// Bytes allocated to everything under `path` (hard links counted once).
fn disk_usage(path: &Path) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if seen.insert((meta.dev(), meta.ino())) {
            total += meta.blocks() * 512;
        }
        if meta.is_dir()
            && let Ok(entries) = fs::read_dir(&path)
        {
            stack.extend(entries.flatten().map(|entry| entry.path()));
        }
    }
    total
}
