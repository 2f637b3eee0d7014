/* SPDX-License-Identifier: BSD-3-Clause */
/* The test payload: a tiny UEFI program the EFI tests put inside the
 * virtual disks (and, as the fallback boot option, on a disk of its own).
 *
 * It prints, on the console (which OVMF copies to the serial port):
 *   PAYLOAD-MARKER: <contents of \MARKER.TXT on its own volume>
 *   PAYLOAD-TPL: <the TPL it runs at; 4 = TPL_APPLICATION>
 *   PAYLOAD-DEVICE: <the device path of the volume it was loaded from>
 *   PAYLOAD-SECUREBOOT: <0|1|absent>           (the SecureBoot variable)
 *   PAYLOAD-BLOCK-SIZE: <that volume's BlockIo block size>
 *   PAYLOAD-DATA: size=<bytes> crc32=<CRC-32 of \DATA.BIN, 8 hex digits>
 *   PAYLOAD-HANDOFF <i>: <hex of the loader's hand-off variable chunk i>
 *   PAYLOAD-WRITE: ok | failed (<status>)      (with the "write" option; the
 *                 written file is read back and compared)
 *   PAYLOAD-BENCH: bytes=<n> crc32=<x>         (with "bench=\FILE")
 *   PAYLOAD-DONE
 * and then powers the machine off (with the "return" option it returns
 * instead). Options come from its load options
 * (the loader's args= setting): "write" creates \WRITTEN.TXT and a 3 MiB
 * \WRITTEN.BIN of deterministic bytes; "bench=\PATH" reads a file whole
 * between PAYLOAD-BENCH-START and PAYLOAD-BENCH-READ (reads only), then
 * again for the PAYLOAD-BENCH line's CRC. With a
 * \CHAIN.TXT on its volume it runs the loader once per line first (see
 * run_chain). */
#include <efi.h>
#include <efilib.h>

/* 0b00f805-61be-4224-ac21-89e3561f90fd: the loader's vendor GUID. */
static EFI_GUID vhdboot_guid = { 0x0b00f805, 0x61be, 0x4224,
                                 { 0xac, 0x21, 0x89, 0xe3, 0x56, 0x1f, 0x90, 0xfd } };

static UINT32 crc_table[256];

static void crc_init(void)
{
  for (UINT32 i = 0; i < 256; i++) {
    UINT32 c = i;
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    crc_table[i] = c;
  }
}

static UINT32 crc_update(UINT32 crc, const UINT8 *p, UINTN n)
{
  crc = ~crc;
  while (n--)
    crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

static EFI_FILE_HANDLE root;

/* Whole small text file, NUL-terminated, or NULL. */
static CHAR8 *read_text(CHAR16 *name)
{
  EFI_FILE_HANDLE f;
  if (root->Open(root, &f, name, EFI_FILE_MODE_READ, 0) != EFI_SUCCESS)
    return NULL;
  static CHAR8 buf[256];
  UINTN n = sizeof buf - 1;
  if (f->Read(f, &n, buf) != EFI_SUCCESS)
    n = 0;
  buf[n] = 0;
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
    buf[--n] = 0;
  f->Close(f);
  return buf;
}

/* Size and CRC of a whole file, read in 1 MiB pieces (crc NULL: read
 * only, to time the reads alone). */
static EFI_STATUS checksum_file(CHAR16 *name, UINT64 *size, UINT32 *crc)
{
  EFI_FILE_HANDLE f;
  EFI_STATUS st = root->Open(root, &f, name, EFI_FILE_MODE_READ, 0);
  if (st != EFI_SUCCESS)
    return st;
  UINTN cap = 1 << 20;
  UINT8 *buf = AllocatePool(cap);
  if (!buf) {
    f->Close(f);
    return EFI_OUT_OF_RESOURCES;
  }
  *size = 0;
  if (crc)
    *crc = 0;
  for (;;) {
    UINTN n = cap;
    st = f->Read(f, &n, buf);
    if (st != EFI_SUCCESS || n == 0)
      break;
    if (crc)
      *crc = crc_update(*crc, buf, n);
    *size += n;
  }
  FreePool(buf);
  f->Close(f);
  return st;
}

static EFI_STATUS write_file(CHAR16 *name, const UINT8 *data, UINTN len)
{
  EFI_FILE_HANDLE f;
  EFI_STATUS st = root->Open(root, &f, name,
                             EFI_FILE_MODE_READ | EFI_FILE_MODE_WRITE | EFI_FILE_MODE_CREATE, 0);
  if (st != EFI_SUCCESS)
    return st;
  UINTN n = len;
  st = f->Write(f, &n, (void *)data);
  EFI_STATUS fst = f->Flush(f);
  EFI_STATUS cst = f->Close(f);
  if (st == EFI_SUCCESS)
    st = fst;
  if (st == EFI_SUCCESS)
    st = cst;
  return st;
}

static EFI_STATUS do_write(CHAR8 *marker)
{
  static const CHAR8 head[] = "written by the payload booted from ";
  static CHAR8 text[300];
  UINTN n = 0;
  for (UINTN i = 0; head[i]; i++)
    text[n++] = head[i];
  for (UINTN i = 0; marker && marker[i] && n < sizeof text - 2; i++)
    text[n++] = marker[i];
  text[n++] = '\n';
  EFI_STATUS st = write_file(L"\\WRITTEN.TXT", text, n);
  if (st != EFI_SUCCESS)
    return st;
  /* 3 MiB: more than one 2 MiB VHD block, so a dynamic image must
   * allocate. Byte i is the low byte of (i * 2654435761) >> 13. */
  UINTN big = 3u << 20;
  UINT8 *p = AllocatePool(big);
  if (!p)
    return EFI_OUT_OF_RESOURCES;
  for (UINTN i = 0; i < big; i++)
    p[i] = (UINT8)(((UINT64)i * 2654435761u) >> 13);
  st = write_file(L"\\WRITTEN.BIN", p, big);
  /* Read it back: through the firmware's FAT driver, from the disk (in cow
   * mode, from the loader's overlay). */
  UINT64 size;
  UINT32 crc;
  if (st == EFI_SUCCESS && checksum_file(L"\\WRITTEN.BIN", &size, &crc) == EFI_SUCCESS &&
      (size != big || crc != crc_update(0, p, big)))
    st = EFI_CRC_ERROR;
  FreePool(p);
  return st;
}

static void dump_handoff(void)
{
  static UINT8 buf[4096];
  int found = 0;
  for (UINTN i = 0; i < 64; i++) {
    CHAR16 name[32];
    if (i == 0)
      StrCpy(name, L"VhdBootHandoff");
    else
      SPrint(name, sizeof name, L"VhdBootHandoff%d", i);
    UINTN n = sizeof buf;
    UINT32 attr;
    if (RT->GetVariable(name, &vhdboot_guid, &attr, &n, buf) != EFI_SUCCESS)
      break;
    found = 1;
    Print(L"PAYLOAD-HANDOFF-ATTR %d: %x\n", i, attr);
    for (UINTN off = 0; off < n; off += 64) {
      Print(L"PAYLOAD-HANDOFF %d: ", i);
      for (UINTN k = off; k < n && k < off + 64; k++)
        Print(L"%02x", buf[k]);
      Print(L"\n");
    }
  }
  if (!found)
    Print(L"PAYLOAD-HANDOFF: none\n");
}

/* "word" anywhere in the options as a whole word; returns the text after
 * "word=" for key=value words. */
static CHAR16 *option(CHAR16 *opts, CHAR16 *word, int *present)
{
  static CHAR16 value[256];
  *present = 0;
  UINTN wl = StrLen(word);
  for (CHAR16 *p = opts; p && *p;) {
    while (*p == ' ')
      p++;
    CHAR16 *start = p;
    while (*p && *p != ' ')
      p++;
    UINTN len = (UINTN)(p - start);
    if (len >= wl && CompareMem(start, word, wl * 2) == 0 &&
        (len == wl || start[wl] == '=')) {
      *present = 1;
      UINTN k = 0;
      for (CHAR16 *v = start + wl + (len > wl); v < p && k < 255; v++)
        value[k++] = *v;
      value[k] = 0;
      return value;
    }
  }
  return NULL;
}

/* \CHAIN.TXT on the payload's own volume: one line of load options per
 * run of the loader, found as \vhdboot.efi on another volume. Each run's
 * status and the TPL afterwards are printed, so one boot can check many
 * ways of failing. */
static void run_chain(EFI_HANDLE self)
{
  EFI_FILE_HANDLE f;
  if (!root || root->Open(root, &f, L"\\CHAIN.TXT", EFI_FILE_MODE_READ, 0) != EFI_SUCCESS)
    return;
  static CHAR8 text[8192];
  UINTN n = sizeof text - 1;
  if (f->Read(f, &n, text) != EFI_SUCCESS)
    n = 0;
  text[n] = 0;
  f->Close(f);

  EFI_HANDLE *handles;
  UINTN count;
  EFI_DEVICE_PATH *loader = NULL;
  if (BS->LocateHandleBuffer(ByProtocol, &FileSystemProtocol, NULL, &count, &handles) ==
      EFI_SUCCESS) {
    for (UINTN i = 0; i < count && !loader; i++) {
      EFI_FILE_HANDLE vol = LibOpenRoot(handles[i]), probe;
      if (vol && vol->Open(vol, &probe, L"\\vhdboot.efi", EFI_FILE_MODE_READ, 0) == EFI_SUCCESS) {
        probe->Close(probe);
        loader = FileDevicePath(handles[i], L"\\vhdboot.efi");
      }
      if (vol)
        vol->Close(vol);
    }
    FreePool(handles);
  }
  if (!loader) {
    Print(L"PAYLOAD-CHAIN: no \\vhdboot.efi found\n");
    return;
  }
  UINTN index = 0;
  for (CHAR8 *line = text; *line;) {
    CHAR8 *end = line;
    while (*end && *end != '\n')
      end++;
    CHAR8 *next = *end ? end + 1 : end;
    *end = 0;
    if (end > line && end[-1] == '\r')
      end[-1] = 0;
    if (*line) {
      static CHAR16 opts[1024];
      UINTN k = 0;
      for (CHAR16 *p = L"vhdboot.efi "; *p; p++)
        opts[k++] = *p;
      for (CHAR8 *p = line; *p && k < 1023; p++)
        opts[k++] = (CHAR16)*p;
      opts[k] = 0;
      Print(L"PAYLOAD-CHAIN %d: %s\n", index, opts);
      EFI_HANDLE child;
      EFI_STATUS st = BS->LoadImage(FALSE, self, loader, NULL, 0, &child);
      if (st == EFI_SUCCESS) {
        EFI_LOADED_IMAGE *li;
        BS->HandleProtocol(child, &LoadedImageProtocol, (void **)&li);
        li->LoadOptions = opts;
        li->LoadOptionsSize = (UINT32)((k + 1) * sizeof(CHAR16));
        st = BS->StartImage(child, NULL, NULL);
      }
      EFI_TPL tpl = BS->RaiseTPL(TPL_HIGH_LEVEL);
      BS->RestoreTPL(tpl);
      Print(L"PAYLOAD-CHAIN-RESULT %d: status=%lx tpl=%d\n", index, (UINT64)st, (int)tpl);
      index++;
    }
    line = next;
  }
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
  InitializeLib(image, systab);
  crc_init();
  EFI_TPL tpl = BS->RaiseTPL(TPL_HIGH_LEVEL);
  BS->RestoreTPL(tpl);

  EFI_LOADED_IMAGE *li;
  BS->HandleProtocol(image, &LoadedImageProtocol, (void **)&li);
  root = LibOpenRoot(li->DeviceHandle);
  CHAR8 *marker = root ? read_text(L"\\MARKER.TXT") : NULL;
  Print(L"PAYLOAD-MARKER: %a\n", marker ? marker : (CHAR8 *)"(none)");
  Print(L"PAYLOAD-TPL: %d\n", (int)tpl);
  CHAR16 *dev = DevicePathToStr(DevicePathFromHandle(li->DeviceHandle));
  Print(L"PAYLOAD-DEVICE: %s\n", dev ? dev : L"(unknown)");

  /* The firmware's own word on Secure Boot (the SecureBoot variable), the
   * oracle for the loader's claim that it booted under Secure Boot. */
  EFI_GUID global = EFI_GLOBAL_VARIABLE;
  UINT8 secure_boot;
  UINTN sb_size = 1;
  if (RT->GetVariable(L"SecureBoot", &global, NULL, &sb_size, &secure_boot) == EFI_SUCCESS &&
      sb_size == 1)
    Print(L"PAYLOAD-SECUREBOOT: %d\n", (int)secure_boot);
  else
    Print(L"PAYLOAD-SECUREBOOT: absent\n");

  EFI_BLOCK_IO *bio;
  if (BS->HandleProtocol(li->DeviceHandle, &BlockIoProtocol, (void **)&bio) == EFI_SUCCESS)
    Print(L"PAYLOAD-BLOCK-SIZE: %d\n", bio->Media->BlockSize);

  UINT64 size;
  UINT32 crc;
  if (root && checksum_file(L"\\DATA.BIN", &size, &crc) == EFI_SUCCESS)
    Print(L"PAYLOAD-DATA: size=%ld crc32=%08x\n", size, crc);
  else
    Print(L"PAYLOAD-DATA: missing\n");
  dump_handoff();

  CHAR16 *opts = NULL;
  if (li->LoadOptionsSize >= 2 && li->LoadOptions) {
    opts = AllocateZeroPool(li->LoadOptionsSize + 2);
    CopyMem(opts, li->LoadOptions, li->LoadOptionsSize);
  } else if (root) {
    /* Booted directly by the firmware (no options): \OPTIONS.TXT, so a
     * benchmark can compare with the same disk booted through the loader. */
    CHAR8 *text = read_text(L"\\OPTIONS.TXT");
    if (text) {
      UINTN n = strlena(text);
      opts = AllocateZeroPool((n + 1) * sizeof(CHAR16));
      for (UINTN i = 0; i < n; i++)
        opts[i] = (CHAR16)text[i];
    }
  }
  if (opts)
    Print(L"PAYLOAD-OPTIONS: %s\n", opts);
  int present;
  option(opts, L"write", &present);
  if (present) {
    EFI_STATUS st = root ? do_write(marker) : EFI_NOT_FOUND;
    if (st == EFI_SUCCESS)
      Print(L"PAYLOAD-WRITE: ok\n");
    else
      Print(L"PAYLOAD-WRITE: failed (%r)\n", st);
  }
  CHAR16 *bench = option(opts, L"bench", &present);
  if (present && bench && root) {
    static CHAR16 bench_path[256];
    StrCpy(bench_path, bench);   /* option() reuses its buffer */
    bench = bench_path;
    /* passes=N reads it N times, so the timed span is long enough to
     * measure on a busy machine. */
    CHAR16 *passes_text = option(opts, L"passes", &present);
    UINTN passes = present && passes_text ? Atoi(passes_text) : 1;
    if (passes < 1)
      passes = 1;
    Print(L"PAYLOAD-BENCH-START\n");
    EFI_STATUS st = EFI_SUCCESS;
    UINT64 total = 0;
    for (UINTN i = 0; i < passes && st == EFI_SUCCESS; i++) {
      st = checksum_file(bench, &size, NULL);
      total += size;
    }
    Print(L"PAYLOAD-BENCH-READ: bytes=%ld\n", total);
    if (st == EFI_SUCCESS)
      st = checksum_file(bench, &size, &crc);
    if (st == EFI_SUCCESS)
      Print(L"PAYLOAD-BENCH: bytes=%ld crc32=%08x\n", size, crc);
    else
      Print(L"PAYLOAD-BENCH: failed (%r)\n", st);
  }
  run_chain(image);
  Print(L"PAYLOAD-DONE\n");
  option(opts, L"return", &present);
  if (present)
    return EFI_SUCCESS;   /* back to whoever started it (the loader) */
  RT->ResetSystem(EfiResetShutdown, EFI_SUCCESS, 0, NULL);
  return EFI_SUCCESS;
}
