/* SPDX-License-Identifier: MIT */
#include "core/common.h"
