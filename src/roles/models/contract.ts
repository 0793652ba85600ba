import { defineContract, type ClientOf } from '../../http/contract.js';
import { statusMethod } from '../../core/role-status.js';

// The models role's interface, shared by its in-process and HTTP forms. Later work adds methods here.
export const ModelsContract = defineContract('models', {
  status: statusMethod,
});
export type ModelsClient = ClientOf<typeof ModelsContract>;
