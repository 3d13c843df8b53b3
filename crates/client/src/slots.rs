//! The slot map: which node address serves each of the 16384 slots, built
//! from a CLUSTER SLOTS reply and patched by `-MOVED`.

use shoal_engine::slot::{Slot, SLOT_COUNT};
use shoal_proto::Frame;

#[derive(Debug, Clone)]
pub struct SlotMap {
    /// `owner[slot]` indexes `addrs`; `None` for an unserved slot.
    owner: Vec<Option<u16>>,
    addrs: Vec<String>,
}

impl Default for SlotMap {
    fn default() -> Self {
        SlotMap { owner: vec![None; usize::from(SLOT_COUNT)], addrs: Vec::new() }
    }
}

impl SlotMap {
    /// Parses `[[start, end, [host, port, id…], replicas…], …]`.
    pub fn from_cluster_slots(reply: &Frame) -> Result<SlotMap, String> {
        let Frame::Array(entries) = reply else {
            return Err(format!("CLUSTER SLOTS: expected an array, got {reply:?}"));
        };
        let mut map = SlotMap::default();
        for entry in entries {
            let Frame::Array(fields) = entry else {
                return Err("CLUSTER SLOTS: entry is not an array".into());
            };
            let (Some(Frame::Integer(start)), Some(Frame::Integer(end)), Some(Frame::Array(primary))) =
                (fields.first(), fields.get(1), fields.get(2))
            else {
                return Err("CLUSTER SLOTS: entry needs start, end and a primary".into());
            };
            let host = match primary.first() {
                Some(Frame::Bulk(h) | Frame::Simple(h)) => String::from_utf8_lossy(h).into_owned(),
                _ => return Err("CLUSTER SLOTS: primary without a host".into()),
            };
            let Some(Frame::Integer(port)) = primary.get(1) else {
                return Err("CLUSTER SLOTS: primary without a port".into());
            };
            let valid = |n: i64| (0..i64::from(SLOT_COUNT)).contains(&n);
            if !valid(*start) || !valid(*end) || start > end {
                return Err(format!("CLUSTER SLOTS: bad range {start}-{end}"));
            }
            map.assign(*start as Slot..=*end as Slot, format!("{host}:{port}"));
        }
        Ok(map)
    }

    fn assign(&mut self, slots: std::ops::RangeInclusive<Slot>, addr: String) {
        let index = match self.addrs.iter().position(|a| *a == addr) {
            Some(i) => i,
            None => {
                self.addrs.push(addr);
                self.addrs.len() - 1
            }
        };
        for slot in slots {
            self.owner[usize::from(slot)] = Some(index as u16);
        }
    }

    /// One node serving every slot (a standalone server).
    pub fn single(addr: String) -> SlotMap {
        let mut map = SlotMap::default();
        map.assign(0..=SLOT_COUNT - 1, addr);
        map
    }

    /// Records a `-MOVED` redirect.
    pub fn moved(&mut self, slot: Slot, addr: String) {
        self.assign(slot..=slot, addr);
    }

    pub fn owner(&self, slot: Slot) -> Option<&str> {
        self.owner[usize::from(slot)].map(|i| self.addrs[usize::from(i)].as_str())
    }

    /// Every address that owns at least one slot.
    pub fn nodes(&self) -> &[String] {
        &self.addrs
    }

    pub fn is_complete(&self) -> bool {
        self.owner.iter().all(Option::is_some)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn entry(start: i64, end: i64, port: i64) -> Frame {
        let node = Frame::Array(vec![
            Frame::Bulk(Bytes::from_static(b"127.0.0.1")),
            Frame::Integer(port),
            Frame::Bulk(Bytes::from_static(b"id")),
        ]);
        Frame::Array(vec![Frame::Integer(start), Frame::Integer(end), node])
    }

    #[test]
    fn parses_and_patches() {
        let reply = Frame::Array(vec![entry(0, 8191, 7000), entry(8192, 16383, 7001)]);
        let mut map = SlotMap::from_cluster_slots(&reply).unwrap();
        assert!(map.is_complete());
        assert_eq!(map.owner(0), Some("127.0.0.1:7000"));
        assert_eq!(map.owner(16383), Some("127.0.0.1:7001"));
        map.moved(0, "127.0.0.1:7002".into());
        assert_eq!(map.owner(0), Some("127.0.0.1:7002"));
        assert_eq!(map.nodes().len(), 3);
    }

    #[test]
    fn rejects_bad_replies() {
        assert!(SlotMap::from_cluster_slots(&Frame::Integer(1)).is_err());
        assert!(SlotMap::from_cluster_slots(&Frame::Array(vec![entry(5, 2, 7000)])).is_err());
        assert!(SlotMap::from_cluster_slots(&Frame::Array(vec![entry(0, 20000, 7000)])).is_err());
        let partial = SlotMap::from_cluster_slots(&Frame::Array(vec![entry(0, 10, 7000)])).unwrap();
        assert!(!partial.is_complete());
    }
}
