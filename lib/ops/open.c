/* vhd_open: the host-file front of vhd_open_io. */
#include "error.h"
#include "image.h"

int vhd_open(const char *path, unsigned flags, vhd_image **out)
{
  vhd_error_clear();
  *out = NULL;
  vhd_io *io;
  int r = vhd_io_open_file(path, (flags & VHD_OPEN_RDWR) ? VHD_IO_RDWR : VHD_IO_RDONLY, &io);
  if (r < 0)
    return r;
  return vhd_open_io(io, VHD_FORMAT_AUTO, flags, out);
}
