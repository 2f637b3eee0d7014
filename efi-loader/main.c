/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdboot.efi: boot the program inside a VHD or VHDX file.
 *
 * The flow: read the settings, open the host partition, open the image
 * with libvhd (mapping its clusters, and in rw mode making room for
 * growth), install the virtual disk and let the firmware's drivers bind,
 * publish the hand-off record, and start the boot program from the
 * virtual disk. Every failure prints one line "vhdboot: ..." and returns
 * an error, so the firmware goes on with its next boot option.
 * docs/efi-loader.md is the manual. */
#include "boot.h"
#include "config.h"
#include "console.h"
#include "util/crc32.h"
#include "devpath.h"
#include "efi_env.h"
#include "error.h"
#include "handoff.h"
#include "host_volume.h"
#include "open_image.h"
#include "secure_boot.h"
#include "sfs.h"
#include "util/strfmt.h"
#include "vdisk.h"

/* gnu-efi's crt0 calls this with the System V convention. */
EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st);

#define CONFIG_NAME "vhdboot.cfg"
#define CONFIG_MAX (64u * 1024)

static EFI_STATUS fail(void)
{
  const char *msg = vhd_last_error();
  con_printf("vhdboot: %s\n", msg[0] ? msg : "failed");
  int e = vhd_last_errno();
  return efi_status_from_errno(e ? e : EIO);
}

/* The directory the loader was started from ("\EFI\BOOT"), from the file
 * path nodes of its LoadedImage; "\" when there are none. */
static void loader_directory(EFI_LOADED_IMAGE *li, char *out, size_t len)
{
  char path[512] = "";
  for (EFI_DEVICE_PATH *n = li->FilePath; n && !DP_IS_END(n); n = DP_NEXT(n)) {
    if (n->Type != MEDIA_DEVICE_PATH || n->SubType != MEDIA_FILEPATH_DP || DP_LEN(n) < 6)
      continue;
    size_t have = strlen(path);
    if (have && path[have - 1] != '\\' && have + 1 < sizeof path)
      path[have++] = '\\';
    ucs2_to_utf8((const uint16_t *)((UINT8 *)n + 4), (DP_LEN(n) - 4) / 2, path + have,
                 sizeof path - have);
  }
  char *norm = efi_path_normalise(NULL, path);
  if (!norm) {
    vhd_snprintf(out, len, "\\");
    return;
  }
  char *last = norm;
  for (char *p = norm; *p; p++)
    if (*p == '\\')
      last = p;
  if (last == norm)
    last[1] = '\0';
  else
    *last = '\0';
  vhd_snprintf(out, len, "%s", norm);
  vhd_free(norm);
}

/* Load options are used only when they are text: firmware-made boot
 * entries may carry binary data there. */
static bool options_text(EFI_LOADED_IMAGE *li, char *out, size_t len)
{
  if (!li->LoadOptions || li->LoadOptionsSize < 2 || li->LoadOptionsSize % 2)
    return false;
  const uint16_t *w = li->LoadOptions;
  size_t n = li->LoadOptionsSize / 2;
  size_t i = 0;
  for (; i < n && w[i]; i++)
    if ((w[i] < 0x20 && w[i] != '\t') || (w[i] >= 0xd800 && w[i] < 0xe000) || w[i] >= 0xfffe)
      return false;
  return i > 0 && ucs2_to_utf8(w, i, out, len) >= 0;
}

static int load_config(EFI_LOADED_IMAGE *li, const char *dir, struct config *cfg)
{
  static char opts[4096];
  bool have_opts = options_text(li, opts, sizeof opts);
  config_init(cfg);
  if (have_opts) {
    int r = config_parse(cfg, opts, strlen(opts), true, "load options");
    if (r < 0)
      return r;
    if (cfg->image[0])
      return config_finish(cfg, dir);
    config_init(cfg);
  }

  char path[600];
  vhd_snprintf(path, sizeof path, "%s%s%s", dir, dir[strlen(dir) - 1] == '\\' ? "" : "\\",
               CONFIG_NAME);
  EFI_FILE_IO_INTERFACE *sfs;
  if (efi_bs->HandleProtocol(li->DeviceHandle, &guid_simple_fs, (void **)&sfs) != EFI_SUCCESS)
    return vhd_error(ENOENT, "no configuration: no image= in the load options, and the "
                     "firmware cannot read the loader's volume to look for %s", path);
  char *text;
  size_t size;
  int r = sfs_read_small(sfs, path, CONFIG_MAX, &text, &size);
  if (r == -ENOENT)
    return vhd_error(ENOENT, "no configuration: no image= in the load options and no %s on "
                     "the loader's volume", path);
  if (r < 0)
    return r;
  r = config_parse(cfg, text, size, false, path);
  vhd_free(text);
  /* Settings in the load options override the file's. */
  if (r == 0 && have_opts)
    r = config_parse(cfg, opts, strlen(opts), true, "load options");
  if (r == 0)
    r = config_finish(cfg, dir);
  return r;
}

static const char *type_text(const struct vhd_info *info)
{
  const char *t = vhd_type_name(info->type);
  return t ? t : "disk";
}

static EFI_STATUS run(const struct sb_check *sb)
{
  EFI_LOADED_IMAGE *li;
  if (efi_bs->HandleProtocol(efi_image, &guid_loaded_image, (void **)&li) != EFI_SUCCESS) {
    vhd_error(EIO, "the firmware gives no information about the loader itself");
    return fail();
  }
  char dir[512];
  loader_directory(li, dir, sizeof dir);
  struct config cfg;
  if (load_config(li, dir, &cfg) < 0)
    return fail();

  struct host_volume vol;
  if (host_volume_select(li->DeviceHandle, cfg.partition, &vol) < 0)
    return fail();
  struct boot_image bi;
  if (boot_image_open(&vol, &cfg, &bi) < 0) {
    EFI_STATUS st = fail();
    host_volume_close(&vol);
    return st;
  }
  /* Unique per host partition and image, so two loaders never clash. */
  uint32_t instance = crc32_update(crc32_of(cfg.image, strlen(cfg.image)),
                                   vol.has_hd ? vol.hd.Signature : NULL,
                                   vol.has_hd ? 16 : 0);
  struct vdisk *vd = NULL;
  struct boot_program prog = { .path = cfg.path, .image = cfg.image };
  EFI_HANDLE child;
  EFI_STATUS status;
  if (vdisk_create(bi.img, bi.mode, instance, &vd) < 0 || vdisk_install(vd) < 0 ||
      boot_find(vd, cfg.path, cfg.image, &prog.fs, &prog.file_dp) < 0 ||
      boot_load(&prog, sb, &child) < 0) {
    status = fail();
  } else {
    /* The one line of a successful start, once the program passed Secure
     * Boot (failures say only what failed). */
    con_printf("vhdboot: %s: %s %s, %llu MiB, %u-byte sectors, %u layer%s, mode %s%s on %s; "
               "starting %s%s\n", cfg.image, vhd_format_name(bi.info.format),
               type_text(&bi.info), (unsigned long long)(bi.info.virtual_size >> 20),
               bi.info.logical_sector_size, bi.info.chain_depth + 1,
               bi.info.chain_depth ? "s" : "", config_mode_name(bi.mode),
               bi.ram ? " (in memory)" : "", vol.name, cfg.path, sb_verifier_text(sb->how));
    if (bi.grown)
      con_printf("vhdboot: %s grew by %llu MiB of reserve for new blocks\n", cfg.image,
                 (unsigned long long)(bi.grown >> 20));
    if (handoff_publish(&vol, bi.img, bi.mode, vd->block_size) < 0)
      con_printf("vhdboot: warning: %s\n", vhd_last_error());
    EFI_TPL tpl = efi_current_tpl();
    if (tpl != TPL_APPLICATION)
      con_printf("vhdboot: warning: starting %s at TPL %u\n", cfg.path, (unsigned)tpl);
    status = boot_run(child, cfg.args);
    con_printf("vhdboot: %s returned: %s\n", cfg.path, efi_status_text(status));
    handoff_withdraw();
  }
  vhd_free(prog.file_dp);
  /* Tear down. If a driver still holds the disk, it must stay alive. */
  if (!vd || vdisk_uninstall(vd)) {
    vdisk_free(vd);
    vhd_close(bi.img);
    host_volume_close(&vol);
  }
  return status;
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *st)
{
  efi_image = image;
  efi_st = st;
  efi_bs = st->BootServices;
  efi_rt = st->RuntimeServices;
  struct sb_check sb;
  secure_boot_check(&sb);
  return (EFI_STATUS)sb_exit_status(sb.shim_present, run(&sb));
}
