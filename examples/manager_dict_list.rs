//! Ten children write into one dict and one list that live in a manager
//! process: the Managers example of "One article deals with Python
//! multiprocessing" (seed 003), in Rust.
//!
//! The Python original starts `Manager()`, makes `dic = manager.dict()` and
//! `l = manager.list(range(5))`, and starts ten `Process(target=fun1,
//! args=(dic, l, i))`; `fun1` sets `dic[index] = 'a'` and `dic['2'] = 'b'` and
//! appends `index` to the list. The parent joins them and prints both: the
//! dict has the ten integer keys and the string key `'2'`, the list
//! `[0, 1, 2, 3, 4]` followed by `0..10` in the order the children ran.
//!
//! Python's dict takes keys of any type at once; here the key type says so:
//! an enum of an integer and a string. The proxies are plain data (the
//! manager's address, its key, the object's id), passed to the children as
//! task arguments; each child opens its own connection to the manager.
//!
//! Shows: `Manager::start`, `dict`, `list_from`, proxies as task arguments.
//!
//! ```text
//! cargo run --example manager_dict_list
//! ```

use std::fmt;

use mproc::Manager;
use mproc::manager::{DictProxy, ListProxy};
use serde::{Deserialize, Serialize};

/// A key of the shared dict: Python mixes `0` and `'2'` in one dict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Key {
    Int(u32),
    Str(String),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Int(n) => write!(f, "{n}"),
            Key::Str(s) => write!(f, "'{s}'"),
        }
    }
}

#[mproc::task]
fn fun1(dic: DictProxy<Key, String>, lis: ListProxy<u32>, index: u32) {
    dic.insert(Key::Int(index), "a".into()).expect("the manager is running");
    dic.insert(Key::Str("2".into()), "b".into()).expect("the manager is running");
    lis.push(index).expect("the manager is running");
}

#[mproc::main]
fn main() -> mproc::Result<()> {
    let manager = Manager::start()?;
    let dic = manager.dict::<Key, String>()?;
    let l = manager.list_from(0..5u32)?;

    let mut process_list = Vec::new();
    for i in 0..10 {
        process_list.push(mproc::spawn!(fun1(dic.clone(), l.clone(), i))?);
    }
    for p in process_list {
        p.join()?;
    }

    let items: Vec<String> = dic.items()?.iter().map(|(k, v)| format!("{k}: '{v}'")).collect();
    println!("{{{}}}", items.join(", "));
    println!("{:?}", l.to_vec()?);
    Ok(())
}
