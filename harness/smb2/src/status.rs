//! NTSTATUS values, named as MS-ERREF 2.3.1 names them. Unknown codes are
//! kept as-is and shown in hex.

use std::fmt;

/// A 32-bit NTSTATUS exactly as the server sent it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NtStatus(pub u32);

macro_rules! statuses {
    ($($name:ident = $val:expr),* $(,)?) => {
        #[allow(non_upper_case_globals)]
        impl NtStatus {
            $(pub const $name: NtStatus = NtStatus($val);)*

            /// The MS-ERREF name, if this client knows the code.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some(stringify!($name)),)*
                    _ => None,
                }
            }

            /// Looks a status up by its MS-ERREF name.
            pub fn from_name(name: &str) -> Option<NtStatus> {
                match name {
                    $(stringify!($name) => Some(NtStatus($val)),)*
                    _ => None,
                }
            }
        }
    };
}

statuses! {
    STATUS_SUCCESS = 0x0000_0000,
    STATUS_PENDING = 0x0000_0103,
    STATUS_NOTIFY_ENUM_DIR = 0x0000_010C,
    STATUS_BUFFER_OVERFLOW = 0x8000_0005,
    STATUS_NO_MORE_FILES = 0x8000_0006,
    STATUS_STOPPED_ON_SYMLINK = 0x8000_002D,
    STATUS_UNSUCCESSFUL = 0xC000_0001,
    STATUS_NOT_IMPLEMENTED = 0xC000_0002,
    STATUS_INVALID_INFO_CLASS = 0xC000_0003,
    STATUS_INFO_LENGTH_MISMATCH = 0xC000_0004,
    STATUS_INVALID_HANDLE = 0xC000_0008,
    STATUS_INVALID_PARAMETER = 0xC000_000D,
    STATUS_NO_SUCH_DEVICE = 0xC000_000E,
    STATUS_NO_SUCH_FILE = 0xC000_000F,
    STATUS_INVALID_DEVICE_REQUEST = 0xC000_0010,
    STATUS_END_OF_FILE = 0xC000_0011,
    STATUS_MORE_PROCESSING_REQUIRED = 0xC000_0016,
    STATUS_NO_MEMORY = 0xC000_0017,
    STATUS_ACCESS_DENIED = 0xC000_0022,
    STATUS_BUFFER_TOO_SMALL = 0xC000_0023,
    STATUS_OBJECT_TYPE_MISMATCH = 0xC000_0024,
    STATUS_OBJECT_NAME_INVALID = 0xC000_0033,
    STATUS_OBJECT_NAME_NOT_FOUND = 0xC000_0034,
    STATUS_OBJECT_NAME_COLLISION = 0xC000_0035,
    STATUS_OBJECT_PATH_INVALID = 0xC000_0039,
    STATUS_OBJECT_PATH_NOT_FOUND = 0xC000_003A,
    STATUS_OBJECT_PATH_SYNTAX_BAD = 0xC000_003B,
    STATUS_SHARING_VIOLATION = 0xC000_0043,
    STATUS_QUOTA_EXCEEDED = 0xC000_0044,
    STATUS_EAS_NOT_SUPPORTED = 0xC000_004F,
    STATUS_FILE_LOCK_CONFLICT = 0xC000_0054,
    STATUS_LOCK_NOT_GRANTED = 0xC000_0055,
    STATUS_DELETE_PENDING = 0xC000_0056,
    STATUS_PRIVILEGE_NOT_HELD = 0xC000_0061,
    STATUS_WRONG_PASSWORD = 0xC000_006A,
    STATUS_LOGON_FAILURE = 0xC000_006D,
    STATUS_ACCOUNT_RESTRICTION = 0xC000_006E,
    STATUS_PASSWORD_EXPIRED = 0xC000_0071,
    STATUS_ACCOUNT_DISABLED = 0xC000_0072,
    STATUS_RANGE_NOT_LOCKED = 0xC000_007E,
    STATUS_DISK_FULL = 0xC000_007F,
    STATUS_INSUFFICIENT_RESOURCES = 0xC000_009A,
    STATUS_MEDIA_WRITE_PROTECTED = 0xC000_00A2,
    STATUS_FILE_IS_A_DIRECTORY = 0xC000_00BA,
    STATUS_NOT_SUPPORTED = 0xC000_00BB,
    STATUS_NETWORK_NAME_DELETED = 0xC000_00C9,
    STATUS_NETWORK_ACCESS_DENIED = 0xC000_00CA,
    STATUS_BAD_NETWORK_NAME = 0xC000_00CC,
    STATUS_REQUEST_NOT_ACCEPTED = 0xC000_00D0,
    STATUS_OPLOCK_NOT_GRANTED = 0xC000_00E2,
    STATUS_INTERNAL_ERROR = 0xC000_00E5,
    STATUS_DIRECTORY_NOT_EMPTY = 0xC000_0101,
    STATUS_NOT_A_DIRECTORY = 0xC000_0103,
    STATUS_CANCELLED = 0xC000_0120,
    STATUS_CANNOT_DELETE = 0xC000_0121,
    STATUS_FILE_DELETED = 0xC000_0123,
    STATUS_FILE_CLOSED = 0xC000_0128,
    STATUS_INVALID_LEVEL = 0xC000_0148,
    STATUS_PIPE_BROKEN = 0xC000_014B,
    STATUS_CONNECTION_DISCONNECTED = 0xC000_020C,
    STATUS_CONNECTION_RESET = 0xC000_020D,
    STATUS_NOT_FOUND = 0xC000_0225,
    STATUS_DUPLICATE_OBJECTID = 0xC000_022A,
    STATUS_RETRY = 0xC000_022D,
    STATUS_NETWORK_SESSION_EXPIRED = 0xC000_035C,
    STATUS_HMAC_NOT_SUPPORTED = 0xC000_A001,
    STATUS_FILE_NOT_AVAILABLE = 0xC000_0467,
    STATUS_SHARE_UNAVAILABLE = 0xC000_0480,
    STATUS_USER_SESSION_DELETED = 0xC000_0203,
    STATUS_IO_TIMEOUT = 0xC000_00B5,
    STATUS_INVALID_DEVICE_STATE = 0xC000_0184,
    STATUS_FS_DRIVER_REQUIRED = 0xC000_019C,
    STATUS_NOT_SAME_DEVICE = 0xC000_00D4,
    STATUS_INVALID_NETWORK_RESPONSE = 0xC000_00C3,
    STATUS_SMB_BAD_CLUSTER_DIALECT = 0xC05D_0001,
    STATUS_SMB_NO_PREAUTH_INTEGRITY_HASH_OVERLAP = 0xC05D_0002,
    STATUS_BAD_IMPERSONATION_LEVEL = 0xC000_00A5,
    STATUS_ACCESS_VIOLATION = 0xC000_0005,
    STATUS_INVALID_SYSTEM_SERVICE = 0xC000_001C,
}

impl NtStatus {
    /// Severity bits 11: STATUS_SEVERITY_ERROR.
    pub fn is_error(self) -> bool {
        self.0 >> 30 == 3
    }
    /// Severity bits 10: STATUS_SEVERITY_WARNING.
    pub fn is_warning(self) -> bool {
        self.0 >> 30 == 2
    }
    pub fn is_success(self) -> bool {
        self == NtStatus::STATUS_SUCCESS
    }
}

impl fmt::Display for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "0x{:08X}", self.0),
        }
    }
}

impl fmt::Debug for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}(0x{:08X})", self.0),
            None => write!(f, "NtStatus(0x{:08X})", self.0),
        }
    }
}

impl From<u32> for NtStatus {
    fn from(v: u32) -> Self {
        NtStatus(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_hex() {
        assert_eq!(
            NtStatus(0xC000_0034).to_string(),
            "STATUS_OBJECT_NAME_NOT_FOUND"
        );
        assert_eq!(NtStatus(0xC0DE_0001).to_string(), "0xC0DE0001");
        assert_eq!(
            NtStatus::from_name("STATUS_PENDING"),
            Some(NtStatus::STATUS_PENDING)
        );
        assert!(NtStatus::STATUS_ACCESS_DENIED.is_error());
        assert!(NtStatus::STATUS_BUFFER_OVERFLOW.is_warning());
    }
}
