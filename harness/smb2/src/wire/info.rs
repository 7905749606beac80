//! SMB2 QUERY_INFO and SET_INFO (MS-SMB2 2.2.37-2.2.40), with the few
//! MS-FSCC information classes the harness uses typed.

use super::{
    expect_structure_size, slice_at, utf16le, Command, FileId, PutLe, Reader, RequestBody,
    ResponseBody, Result, HEADER_LEN,
};

pub const SMB2_0_INFO_FILE: u8 = 0x01;
pub const SMB2_0_INFO_FILESYSTEM: u8 = 0x02;
pub const SMB2_0_INFO_SECURITY: u8 = 0x03;
pub const SMB2_0_INFO_QUOTA: u8 = 0x04;

/// MS-FSCC FileInformationClass values.
pub mod class {
    pub const FILE_BASIC_INFORMATION: u8 = 4;
    pub const FILE_STANDARD_INFORMATION: u8 = 5;
    pub const FILE_INTERNAL_INFORMATION: u8 = 6;
    pub const FILE_RENAME_INFORMATION: u8 = 10;
    pub const FILE_DISPOSITION_INFORMATION: u8 = 13;
    pub const FILE_POSITION_INFORMATION: u8 = 14;
    pub const FILE_ALL_INFORMATION: u8 = 18;
    pub const FILE_END_OF_FILE_INFORMATION: u8 = 20;
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryInfoRequest {
    pub info_type: u8,
    pub file_info_class: u8,
    pub output_buffer_length: u32,
    pub additional_information: u32,
    pub flags: u32,
    pub file_id: FileId,
    pub input: Vec<u8>,
}

impl RequestBody for QueryInfoRequest {
    const COMMAND: Command = Command::QueryInfo;
    type Response = QueryInfoResponse;
    fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u16(41);
        buf.put_u8(self.info_type);
        buf.put_u8(self.file_info_class);
        buf.put_u32(self.output_buffer_length);
        buf.put_u16(if self.input.is_empty() {
            0
        } else {
            (HEADER_LEN + 40) as u16
        });
        buf.put_u16(0);
        buf.put_u32(self.input.len() as u32);
        buf.put_u32(self.additional_information);
        buf.put_u32(self.flags);
        self.file_id.emit(buf);
        buf.extend_from_slice(&self.input);
        if self.input.is_empty() {
            buf.put_u8(0);
        }
    }
    fn payload_size(&self) -> usize {
        (self.output_buffer_length as usize).max(self.input.len())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryInfoResponse {
    pub output: Vec<u8>,
}

impl QueryInfoResponse {
    pub fn emit_body(&self, buf: &mut Vec<u8>) {
        buf.put_u16(9);
        buf.put_u16((HEADER_LEN + 8) as u16);
        buf.put_u32(self.output.len() as u32);
        buf.extend_from_slice(&self.output);
    }
    /// Decodes the output as FileStandardInformation.
    pub fn standard(&self) -> Result<FileStandardInformation> {
        FileStandardInformation::parse(&self.output)
    }
}

impl ResponseBody for QueryInfoResponse {
    fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "QUERY_INFO response", 9)?;
        let off = r.u16("OutputBufferOffset")? as usize;
        let len = r.u32("OutputBufferLength")? as usize;
        let output = if len == 0 {
            Vec::new()
        } else {
            slice_at(msg, off, len, "OutputBuffer")?.to_vec()
        };
        Ok(QueryInfoResponse { output })
    }
}

/// MS-FSCC 2.4.41 FileStandardInformation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileStandardInformation {
    pub allocation_size: u64,
    pub end_of_file: u64,
    pub number_of_links: u32,
    pub delete_pending: bool,
    pub directory: bool,
}

impl FileStandardInformation {
    pub fn parse(b: &[u8]) -> Result<Self> {
        let mut r = Reader::new(b);
        Ok(FileStandardInformation {
            allocation_size: r.u64("AllocationSize")?,
            end_of_file: r.u64("EndOfFile")?,
            number_of_links: r.u32("NumberOfLinks")?,
            delete_pending: r.u8("DeletePending")? != 0,
            directory: r.u8("Directory")? != 0,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetInfoRequest {
    pub info_type: u8,
    pub file_info_class: u8,
    pub additional_information: u32,
    pub file_id: FileId,
    pub buffer: Vec<u8>,
}

impl SetInfoRequest {
    /// FileDispositionInformation: DeletePending = `delete`.
    pub fn disposition(file_id: FileId, delete: bool) -> Self {
        SetInfoRequest {
            info_type: SMB2_0_INFO_FILE,
            file_info_class: class::FILE_DISPOSITION_INFORMATION,
            additional_information: 0,
            file_id,
            buffer: vec![delete as u8],
        }
    }
    /// FileRenameInformation (SMB2 form, MS-FSCC 2.4.37.2); `new_name` is
    /// relative to the share root.
    pub fn rename(file_id: FileId, new_name: &str, replace_if_exists: bool) -> Self {
        let name = utf16le(new_name);
        let mut b = Vec::new();
        b.put_u8(replace_if_exists as u8);
        b.extend_from_slice(&[0; 7]);
        b.put_u64(0); // RootDirectory
        b.put_u32(name.len() as u32);
        b.extend_from_slice(&name);
        SetInfoRequest {
            info_type: SMB2_0_INFO_FILE,
            file_info_class: class::FILE_RENAME_INFORMATION,
            additional_information: 0,
            file_id,
            buffer: b,
        }
    }
    /// FileEndOfFileInformation.
    pub fn end_of_file(file_id: FileId, eof: u64) -> Self {
        SetInfoRequest {
            info_type: SMB2_0_INFO_FILE,
            file_info_class: class::FILE_END_OF_FILE_INFORMATION,
            additional_information: 0,
            file_id,
            buffer: eof.to_le_bytes().to_vec(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetInfoResponse;

impl RequestBody for SetInfoRequest {
    const COMMAND: Command = Command::SetInfo;
    type Response = SetInfoResponse;
    fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u16(33);
        buf.put_u8(self.info_type);
        buf.put_u8(self.file_info_class);
        buf.put_u32(self.buffer.len() as u32);
        buf.put_u16((HEADER_LEN + 32) as u16);
        buf.put_u16(0);
        buf.put_u32(self.additional_information);
        self.file_id.emit(buf);
        buf.extend_from_slice(&self.buffer);
        if self.buffer.is_empty() {
            buf.put_u8(0);
        }
    }
    fn payload_size(&self) -> usize {
        self.buffer.len()
    }
}

impl ResponseBody for SetInfoResponse {
    fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "SET_INFO response", 2)?;
        Ok(SetInfoResponse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_response_round_trip() {
        let mut out = Vec::new();
        out.put_u64(4096);
        out.put_u64(10);
        out.put_u32(1);
        out.put_u8(1);
        out.put_u8(0);
        out.put_u16(0);
        let q = QueryInfoResponse { output: out };
        let mut b = vec![0; HEADER_LEN];
        q.emit_body(&mut b);
        let back = QueryInfoResponse::parse(&b).unwrap();
        assert_eq!(back, q);
        let s = back.standard().unwrap();
        assert_eq!(s.end_of_file, 10);
        assert!(s.delete_pending && !s.directory);
    }

    #[test]
    fn rename_buffer_layout() {
        let s = SetInfoRequest::rename(FileId::default(), "b.txt", true);
        assert_eq!(s.buffer[0], 1);
        assert_eq!(&s.buffer[16..20], &10u32.to_le_bytes());
        assert_eq!(s.buffer.len(), 20 + 10);
    }
}
